// bwscd's viewer: the player (a recording's clips back to back, from the
// trigger) and the map (the GNSS trail and the trigger location, Leaflet).
// Served as a file: the Content-Security-Policy allows no inline script.
// The page's data is in <script type="application/json" id="page-data">.
"use strict";

(function () {
  var block = document.getElementById("page-data");
  if (!block) {
    return;
  }
  var data = JSON.parse(block.textContent);

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  // --- The player -------------------------------------------------------
  var video = document.getElementById("player");
  if (video && data.clips.length) {
    var clips = data.clips, current = -1, pendingSeek = null, playAfterSeek = false;
    var position = document.getElementById("player-position");
    var cannot = document.getElementById("cannot-play");

    var unplayable = function (clip) {
      var type = document.getElementById("cannot-play-type");
      type.textContent = (clip.type || "this video format") + " (" + clip.name + ")";
      cannot.hidden = false;
    };

    // The clip that holds second t of the recording, and where in it.
    var locate = function (t) {
      for (var i = clips.length - 1; i >= 0; i--) {
        if (t >= clips[i].offset) {
          return [i, t - clips[i].offset];
        }
      }
      return [0, 0];
    };

    var load = function (index, at, play) {
      if (index !== current) {
        current = index;
        video.dataset.clip = String(index);
        if (clips[index].type && video.canPlayType(clips[index].type) === "") {
          // Chromium plays some Matroska it does not claim to: try, and let
          // the error event say for sure.
          cannot.dataset.doubt = clips[index].type;
        }
        pendingSeek = at;
        playAfterSeek = play;
        video.src = clips[index].url;
        video.load();
      } else {
        video.currentTime = at;
        if (play) {
          video.play().catch(function () {});
        }
      }
    };

    var seek = function (t, play) {
      var where = locate(t);
      load(where[0], where[1], play);
    };

    video.addEventListener("loadedmetadata", function () {
      if (pendingSeek !== null) {
        video.currentTime = pendingSeek;
        pendingSeek = null;
        if (playAfterSeek) {
          video.play().catch(function () {});
        }
      }
    });
    video.addEventListener("timeupdate", function () {
      var t = clips[current].offset + video.currentTime;
      video.dataset.recordingTime = t.toFixed(3);
      position.textContent = "At " + clock(t) + " of " + clock(data.total) +
        " (clip " + (current + 1) + " of " + clips.length + ")";
    });
    video.addEventListener("ended", function () {
      if (current + 1 < clips.length) {
        load(current + 1, 0, true);  // the next clip, as one recording
      }
    });
    video.addEventListener("error", function () {
      unplayable(clips[current]);
    });
    document.getElementById("from-trigger").addEventListener("click", function () {
      seek(data.triggerOffset, true);
    });
    document.getElementById("from-start").addEventListener("click", function () {
      seek(0, true);
    });
    Array.prototype.forEach.call(document.querySelectorAll("button.seek"), function (button) {
      button.addEventListener("click", function () {
        seek(parseFloat(button.dataset.seconds), true);
        video.focus();
      });
    });
    seek(data.triggerOffset, false);
  }

  // --- The map ----------------------------------------------------------
  var element = document.getElementById("map");
  if (element && window.L) {
    var points = data.track.map(function (p) { return [p[0], p[1]]; });
    var map = L.map(element, {attributionControl: Boolean(data.tiles), keyboard: true});
    if (data.tiles) {
      var host = new URL(data.tiles.replace(/[{}]/g, "")).host;
      L.tileLayer(data.tiles, {maxZoom: 19, attribution: "Map tiles: " + host}).addTo(map);
    } else {
      element.classList.add("plain");  // no tiles: the trail on a plain background
    }
    var bounds = [];
    if (points.length) {
      L.polyline(points, {className: "trail", weight: 3}).addTo(map);
      // Every point, up to a limit that keeps the page quick.
      if (points.length <= 2000) {
        data.track.forEach(function (p) {
          L.circleMarker([p[0], p[1]], {radius: 3, className: "trail-point"})
            .bindTooltip(p[2] || "").addTo(map);
        });
      }
      bounds = points.slice();
    }
    if (data.trigger) {
      var at = [data.trigger.lat, data.trigger.lon];
      L.Icon.Default.imagePath = "/static/leaflet/images/";
      L.marker(at, {title: "Trigger location", alt: "Trigger location"}).addTo(map);
      bounds.push(at);
    }
    if (bounds.length === 1) {
      map.setView(bounds[0], 17);
    } else if (bounds.length) {
      map.fitBounds(bounds, {padding: [20, 20], maxZoom: 18});
    }
    element.dataset.points = String(points.length);
  }
})();
