"""
C{twistd bwscd}: options, and the service that ties the parts together.
"""

import errno
import gc
import os
import signal
import socket
import sys
from urllib.parse import urlsplit

import twisted
from twisted.application.service import MultiService, Service
from twisted.internet import reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python import usage
from twisted.protocols.tls import TLSMemoryBIOFactory

from bwscd import __version__
from bwscd.threads import Pools

from bwscd.config import datadir, paths
from bwscd.config.connectionfile import CONTAINER_TYPES
from bwscd.config.settings import Settings
from bwscd.files import ChangedFiles
from bwscd.security.tokens import TokenAuthority
from bwscd.protocol.accesslog import AccessLoggingSite
from bwscd.service.balance import ConnectionTable, listenBalanced
from bwscd.policy.capabilities import PublishedDocuments
from bwscd.policy.categories import PublishedCategories
from bwscd.security.accounts import Credentials
from bwscd.policy.events import (EventFilter, EventLog, Events, FilteredSink, LogSink,
                                 Retention, WebhookSink)
from bwscd.policy.capacity import THRESHOLD_DAYS, Capacity, CapacityWatch
from bwscd.policy.fixity import FixityCheck
from bwscd.policy.pace import Pace
from bwscd.policy.scrub import ACCOUNT as SCRUB_ACCOUNT, DEFAULT_PERIOD, Scrub, parsePeriod
from bwscd.plugins import installedBackends, loadBackend, sizeInBytes
from bwscd.config.processlock import InUse, ProcessLock, claimStorage
from bwscd.transfer.quota import Quota
from bwscd.policy.refusals import QUIET_PERIOD, RefusalEpisodes
from bwscd.policy.registry import Registry
from bwscd.catalog.export import Exporter
from bwscd.catalog.index import CatalogIndex
from bwscd.catalog.query import CatalogQuery
from bwscd.catalog.rebuild import startUp as catalogStartUp
from bwscd.catalog.retention import HoldLookup
from bwscd.catalog.upkeep import CatalogUpkeep
from bwscd.config.holds import HoldFile, LegalHolds
from bwscd.protocol.auth import Authentication
from bwscd.protocol.catalogapi import CatalogAPI, tokenAccount
from bwscd.security.logins import FailedLogins
from bwscd.viewer.session import Sessions
from bwscd.viewer.site import Viewer, ViewerRoot, sessionOrToken
from bwscd.protocol.routing import Root
from bwscd.protocol.storageapi import StorageAPI
from bwscd.security.tls import ServerCertificate
from bwscd.service.signals import handleStopSignals
from bwscd.service.expiry import SWEEP_INTERVAL, ExpirySweep
from bwscd.service.workers import WorkerProcesses

log = Logger()

# How often operator changes (certificate, keys) are looked for; SIGHUP
# makes the server look at once.
RELOAD_INTERVAL = 10
EXPIRY_CHECK_INTERVAL = 24 * 60 * 60
# How often what is stored is counted again for --quota: uploads and
# deletions keep the count between, this takes in what changed on the
# server itself (files removed by the operator).
QUOTA_COUNT_INTERVAL = 10 * 60
VIEWER_PORT = 8444
# Connections waiting to be accepted, as Twisted's listenTCP has it.
BACKLOG = 50


def cannotStart(reason) -> SystemExit:
    """
    Stop twistd before it starts (it has not become a daemon yet, so the
    operator sees it either way): one line on standard error, exit status 1.
    What stops a start later, once the log has begun, is in the log.
    """
    return SystemExit(f"twistd bwscd: cannot start: {reason}")


def unusable(error: OSError) -> str:
    """Why a file or directory can't be used, and what to do."""
    if isinstance(error, (FileExistsError, NotADirectoryError)):  # where one was to be
        return f"{error.filename}: not a directory"
    return (f"{error.filename}: {error.strerror}; the data directory and the storage "
            f"must be readable and writable by the user twistd runs as (uid {os.geteuid()})")


def bindPort(port: int, interface: str) -> socket.socket:
    """
    The server's socket, bound (not yet listening: bwscd listens once its
    storage is ready).

    @raise SystemExit: from L{cannotStart}, saying why not.
    """
    bound = socket.socket(socket.AF_INET6 if ":" in interface else socket.AF_INET)
    # As Twisted's own ports are; an adopted one is taken as it is, and a
    # blocking accept would hold up the reactor.
    bound.setblocking(False)
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        bound.bind((interface, port))
    except OSError as e:
        bound.close()
        where = f"{interface or 'every IPv4 address'} port {port}"
        if e.errno == errno.EADDRINUSE:
            raise cannotStart(f"{where} is in use by another program (another server?): "
                              "stop it, or give another --port or --interface")
        raise cannotStart(f"can't listen on {where}: {e.strerror}")
    return bound


def viewerPort(text: str) -> int | None:
    """C{--catalog-port}: a port, or L{None} for no viewer (C{0} or C{off})."""
    if text.strip().lower() in ("0", "off"):
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise usage.UsageError(f"--catalog-port {text!r}: a port from 1 to 65535, or 0 or off")
    return int(text)


def checkTileURL(url: str) -> None:
    """C{--map-tiles}: an https URL with C{{z}}, C{{x}} and C{{y}} in it."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc or not all(
            f"{{{name}}}" in url for name in "zxy"):
        raise usage.UsageError(
            f"--map-tiles {url!r}: an https URL with {{z}}, {{x}} and {{y}}, e.g. "
            "https://tile.openstreetmap.org/{z}/{x}/{y}.png")


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Receive recordings from AXIS body worn system controllers over the "
        "Swift API, verify them and store them durably.  The first start "
        "creates the data directory and the connection file DATA/config.json "
        "to upload in Body Worn Manager."
    )
    optParameters = [
        ["data", "d", "bwscd-data",
         "Data directory: settings, certificate, connection file, and storage by default."],
        ["port", "p", 8443, "TCP port to listen on.", int],
        ["interface", "i", "", "Address to listen on (default: all IPv4 addresses; :: for IPv6)."],
        ["backend", "b", "filesystem",
         "Storage backend, NAME[:key=value[:key=value]]."],
        ["container-type", None, None,
         "Video container the controller should send: mkv (default) or mp4."],
        ["token-lifetime", None, 3600, "Seconds an auth token stays valid.", int],
        ["max-uploads", None, 32,
         "Uploads received at once, each with a worker thread, per process; "
         "more get 503 with Retry-After, and the controller tries again.", int],
        ["max-downloads", None, 16,
         "Reads from storage for downloads at once, each on a thread, per "
         "process; more downloads take turns, and a slow client holds none.", int],
        ["workers", None, 1,
         "Processes that receive uploads, each on its own core: the main "
         "process and N - 1 workers sharing its port.", int],
        ["idle-timeout", None, 60,
         "Seconds a connection may stay silent (also while storage is slow).", int],
        ["quota", None, None,
         "The most the controller's account may store, over every container, "
         "e.g. 500G or 2T; beyond it uploads get 507 (default: no quota)."],
        ["min-upload-rate", None, "16K",
         "Bytes per second an upload's body must bring over each --idle-timeout "
         "period, or the connection is closed (e.g. 16K; 0: no minimum)."],
        ["header-timeout", None, 30,
         "Seconds a client has from the first byte of a request to the end of "
         "its headers.", int],
        ["event-log-keep", None, None,
         "Delete rotated event log files beyond this: a total size (e.g. 50G) "
         "or an age in days (e.g. 400d).  Default: keep every event, as long "
         "as the evidence."],
        ["catalog-port", None, str(VIEWER_PORT),
         "TCP port of the web viewer for evidence clerks (HTTPS, the same "
         "certificate), in the main process; 0 or off: no viewer."],
        ["catalog-interface", None, None,
         "Address the web viewer listens on (default: --interface's)."],
        ["map-tiles", None, None,
         "Map tiles for the viewer's maps: an https URL with {z}, {x} and {y} "
         "(default: none, the GNSS trail on a plain background)."],
        ["scrub-period", None, DEFAULT_PERIOD,
         "Read every stored object again within this period and check its SHA-256 "
         "(e.g. 30d, 12h; off: no scrub), in the main process."],
        ["scrub-rate", None, None,
         "The most the scrub reads per second, e.g. 20M (default: no cap beyond "
         "a fifth of the read bandwidth it measures)."],
        ["capacity-warning", None, THRESHOLD_DAYS,
         "Days until storage is full (at the intake of the last days) under which a "
         "capacity.low event is emitted, once per episode.", int],
        ["refusal-quiet-period", None, QUIET_PERIOD,
         "Seconds without a 503 or 507 of a kind after which its refusal.ended "
         "event says that episode is over.", int],
    ]
    optFlags = [
        ["http", None, "Serve plain HTTP, for development only (no certificate "
                       "in the connection file)."],
        ["allow-capability-withdrawal", None,
         "Start even though settings.json switches off a capability that was "
         "published before (the API forbids withdrawing one)."],
    ]

    def __init__(self):
        super().__init__()
        self["public-address"] = []
        self["webhook"] = []
        self.arguments: list[str] = []
        """The options as given, for the worker processes."""

    def parseOptions(self, options=None):
        self.arguments = list(options if options is not None else sys.argv[1:])
        super().parseOptions(options)

    def opt_webhook(self, text):
        """
        POST every event as JSON to this http(s) URL (repeatable); failed
        deliveries are retried without ever holding up an upload.  For some
        events only, add filters: URL;types=A,B;categories=C,D.
        """
        url, _, filtering = text.partition(";")
        if not url.startswith(("http://", "https://")):
            raise usage.UsageError(f"--webhook {url}: not an http(s) URL")
        try:
            chosen = EventFilter.parse(filtering) if filtering else None
        except ValueError as e:
            raise usage.UsageError(f"--webhook {text}: {e}")
        self["webhook"].append((url, chosen))

    def opt_public_address(self, host):
        """
        A name or IP address the controller will use to reach this server
        (repeatable).  They become the connection file's token URIs and the
        certificate's names.  Default: this machine's IPv4 addresses and
        127.0.0.1, chosen at the first start.
        """
        self["public-address"].append(host)

    def opt_help_backends(self):
        """List the installed storage backends and their options."""
        for name, plugin in sorted(installedBackends().items()):
            print(f"{name}: {plugin.description}")
        raise SystemExit(0)

    def opt_version(self):
        """Print bwscd's version, and Twisted's, and exit."""
        print(f"bwscd {__version__} (Twisted {twisted.__version__})")
        raise SystemExit(0)

    def destination(self) -> datadir.Destination:
        """The data directory, created or brought up to date by the options."""
        return datadir.prepare(
            self["data"],
            port=self["port"],
            https=not self["http"],
            publicAddresses=self["public-address"] or None,
            containerType=self["container-type"],
            allowWithdrawal=self["allow-capability-withdrawal"],
        )

    def reserve(self, backend) -> None:
        """
        Take what makes this server the only one on its data directory, its
        storage and its port, before anything is read or written: another
        server may be using them, with uploads under way.

        @raise SystemExit: from L{cannotStart}, saying why not.
        """
        try:
            self["locks"] = claimStorage(self["data"], backend)
        except InUse as e:
            raise cannotStart(e)
        except OSError as e:
            raise cannotStart(unusable(e))
        self["socket"] = bindPort(self["port"], self["interface"])
        if self["catalog-port"] is not None:
            self["viewer-socket"] = bindPort(self["catalog-port"], self["catalog-interface"])

    def postOptions(self):
        if not 0 < self["port"] < 65536:
            raise usage.UsageError("--port must be 1 to 65535")
        if self["container-type"] not in (None, *CONTAINER_TYPES):
            raise usage.UsageError(f"--container-type must be {' or '.join(CONTAINER_TYPES)}")
        if self["token-lifetime"] < 60:
            raise usage.UsageError("--token-lifetime must be at least 60 seconds")
        for option in ("max-uploads", "max-downloads", "idle-timeout", "header-timeout",
                       "workers", "refusal-quiet-period", "capacity-warning"):
            if self[option] < 1:
                raise usage.UsageError(f"--{option} must be at least 1")
        try:
            self["scrub-period"] = parsePeriod(self["scrub-period"])
        except ValueError as e:
            raise usage.UsageError(f"--scrub-period {e}")
        for option, example in (("quota", "500G"), ("min-upload-rate", "16K"),
                                ("scrub-rate", "20M")):
            if self[option] is not None:
                try:
                    self[option] = sizeInBytes(self[option])
                except ValueError:
                    raise usage.UsageError(
                        f"--{option} {self[option]!r} is not a size like {example}")
        self["catalog-port"] = viewerPort(self["catalog-port"])
        if self["catalog-port"] == self["port"]:
            raise usage.UsageError("--catalog-port must differ from --port (or be off)")
        if self["catalog-interface"] is None:
            self["catalog-interface"] = self["interface"]
        if self["map-tiles"] is not None:
            checkTileURL(self["map-tiles"])
        if self["event-log-keep"] is not None:
            try:
                self["event-log-keep"] = Retention.parse(self["event-log-keep"])
            except ValueError:
                raise usage.UsageError(f"--event-log-keep {self['event-log-keep']!r} is "
                                       "neither a size like 50G nor days like 400d")
        self["data"] = os.path.abspath(self["data"])
        try:
            self["storage"] = loadBackend(self["backend"], self["data"])
        except ValueError as e:
            raise cannotStart(f"--backend {self['backend']}: {e}; the backends and their "
                              "options: twistd bwscd --help-backends")
        self.reserve(self["storage"])
        try:
            self["destination"] = self.destination()
            self["destination"].categoryFile.read()  # a broken file stops the start
        except ValueError as e:
            raise cannotStart(e)
        except OSError as e:
            raise cannotStart(unusable(e))


class WorkerOptions(Options):
    """A worker process's options: the main process's, and which worker it is."""

    optParameters = [
        ["worker", None, None, "This worker's number.", int],
        ["listening-fd", None, None, "The main process's listening socket.", int],
        ["connections-fd", None, None, "The processes' table of open connections.", int],
    ]

    def reserve(self, backend) -> None:
        # The main process holds them: this worker inherited the same locks'
        # open files, and the listening socket.
        pass

    def destination(self) -> datadir.Destination:
        # The main process prepared it: a worker (restarted, maybe much
        # later) writes nothing back over what operators changed since.
        return datadir.load(self["data"])


class DestinationService(Service):
    """
    Opens the backend (which cleans up after a crash), publishes the
    capability documents into it, and only then starts listening.
    """

    def __init__(self, options, site, backend, registry, documents, events, pools,
                 credentials, certificate, storage, authority, quota, workers, connections,
                 catalog=None, viewerSite=None, sweep=None, background=()):
        self._options = options
        self._background = background
        """
        The main process's services over the whole storage (the scrub, the
        capacity watch), started once storage is open; none in a worker.
        """
        self._viewerSite = viewerSite
        """The web viewer's site, in the main process with --catalog-port; else L{None}."""
        self._viewerPort = None
        self._catalog = catalog
        """The main process's L{CatalogUpkeep}; L{None} in a worker."""
        self._sweeping = None if sweep is None else LoopingCall(sweep.sweep)
        """The main process's daily L{ExpirySweep}; L{None} in a worker: one process sweeps."""
        self._site = site
        self._backend = backend
        self._registry = registry
        self._documents = documents
        self._events = events
        self._pools = pools
        self._credentials = credentials
        self._certificate = certificate
        self._storage = storage
        self._authority = authority
        self._quota = quota
        self._workers = workers
        """L{WorkerProcesses} to start once listening; L{None} in a worker."""
        self._connections = connections
        """The processes' L{ConnectionTable}; L{None} with one process."""
        self._settingsFile = ChangedFiles(os.path.join(options["data"], paths.SETTINGS))
        self._port = None
        self._watching = LoopingCall(self.reload)
        self._expiry = LoopingCall(self._checkExpiry)
        self._counting = LoopingCall(self._countStored)

    def startService(self):
        super().startService()
        reactor.callWhenRunning(handleStopSignals)  # after the reactor's own
        self._pools.start()
        # Joined only after the reactor has dropped every connection: a
        # worker waits for its upload's body until its connection is lost.
        # Before the backend's own pools, started with its first call: an
        # upload's thread may wait for them.
        reactor.addSystemEventTrigger("after", "shutdown", self._pools.stop)
        d = self._start()
        d.addErrback(self._failed)

    def _failed(self, reason):
        log.failure("bwscd could not start", reason)
        # Exit non-zero, so that a supervisor sees the failure.
        reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
        reactor.stop()

    @inlineCallbacks
    def _start(self):
        destination = self._options["destination"]
        main = self._workers is not None
        if main:
            for lock in self._options["locks"]:
                lock.recordHolder()  # twistd may have become a daemon, a new process
        # Only the main process recovers, before any worker starts: for a
        # worker, a temporary file may be another process's upload.
        yield self._backend.open(recover=main)
        yield self._registry.load()
        if main:
            yield self._mainProcessStart(destination)
        self._port = self._listen()
        if self._viewerSite is not None:
            self._viewerPort = self._listenViewer()
        # What start-up made (modules, classes, settings) lives as long as
        # the process: out of the collector's sight, a full collection no
        # longer walks it, which held the reactor for tens of milliseconds,
        # long enough for --workers' balancing to take this process for
        # stuck (tests/test_workers.py) and for uploads to stall meanwhile.
        gc.collect()
        gc.freeze()
        self._watching.start(RELOAD_INTERVAL, now=False)
        signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(self._hangUp))
        if not main:
            return
        if self._certificate is not None:
            self._expiry.start(EXPIRY_CHECK_INTERVAL)
        self._workers.startWorkers(self._port.fileno())
        log.info("storage: {backend}", backend=self._backend.description)
        log.info("connection file for Body Worn Manager: {path}",
                 path=destination.connectionFilePath)
        for uri in destination.tokenURIs:
            log.info("  token URI {uri}", uri=uri)

    @inlineCallbacks
    def _mainProcessStart(self, destination):
        """What is done once for the storage as a whole, before listening."""
        yield self._documents.mirrorAll()
        if self._quota.limit is not None:
            yield self._quota.count(self._backend, restart=True)
            log.info("quota: {used} of {limit} bytes stored", used=self._quota.used,
                     limit=self._quota.limit)
            self._counting.start(QUOTA_COUNT_INTERVAL, now=False)
        if destination.newlyPublished:
            self._events.emit("capability.published", capabilities=destination.newlyPublished)
        if self._catalog is not None:
            # The file exists before any worker reads it; what it lacks is
            # indexed in the background, while uploads are taken.
            yield self._catalog.index.open()
            self._catalog.start()
            d = catalogStartUp(self._catalog.index, self._backend,
                               os.path.join(destination.directory, paths.EVENT_LOG))
            d.addErrback(lambda reason: log.failure("catalog: could not bring it up to date "
                                                    "with storage", reason))
            if self._sweeping is not None:
                # Candidates come from the catalog: the first sweep once it is up to date.
                d.addCallback(lambda _: self._sweeping.start(SWEEP_INTERVAL, now=True))
        for part in self._background:
            part.startService()

    def _listen(self):
        options = self._options
        factory = self._site
        if self._certificate is not None:
            factory = TLSMemoryBIOFactory(self._certificate, False, self._site)
        fd = options.get("listening-fd")  # a worker's; the main process bound its own
        if fd is None:
            bound = options["socket"]
            bound.listen(BACKLOG)
            family, fd = bound.family, bound.detach()
        if self._connections is None:  # one process: the main one
            port = reactor.adoptStreamPort(fd, family, factory)
        else:
            port = listenBalanced(reactor, self._connections, factory, fd)
        os.close(fd)  # adopted as a copy
        return port

    def _listenViewer(self):
        """The web viewer's port: HTTPS with the same certificate, main process only."""
        factory = self._viewerSite
        if self._certificate is not None:
            factory = TLSMemoryBIOFactory(self._certificate, False, self._viewerSite)
        bound = self._options["viewer-socket"]
        bound.listen(BACKLOG)
        family, fd = bound.family, bound.detach()
        port = reactor.adoptStreamPort(fd, family, factory)
        os.close(fd)  # adopted as a copy
        address = port.getHost()
        log.info("web viewer: https://{host}:{port}/", host=address.host, port=address.port)
        return port

    def _hangUp(self):
        """SIGHUP: reload now, in every process."""
        if self._workers is not None:
            self._workers.signal(signal.SIGHUP)
        self.reload()

    def reload(self):
        """
        Take up what operator commands changed while running: the
        certificate (new connections get it), the accepted keys, the token
        secret, whether content is encrypted.  A file that can't be used
        (an edit half done) is logged, and looked at again next time.
        """
        try:
            if self._certificate is not None:
                self._certificate.reloadIfChanged()
            stamps = self._settingsFile.changes()
            if stamps is not None:
                settings = Settings.load(self._options["data"])
                self._credentials.update(settings)
                self._authority.secret = self._credentials.tokenSecret
                self._storage.encrypted = bool(settings.encryption)
                if self._settingsFile.taken is not None:
                    log.info("settings changed: reloaded account keys, token secret "
                             "and encryption")
                self._settingsFile.takenUp(stamps)
        except Exception:
            log.failure("could not reload changed settings or certificate; "
                        "keeping the current ones")

    def _countStored(self):
        d = self._quota.count(self._backend)
        d.addErrback(lambda reason: log.failure(
            "could not count what is stored for the quota; keeping the count", reason))
        return d

    def _checkExpiry(self):
        if self._certificate.expiresSoon():
            self._events.emit(
                "certificate.expiring",
                notValidAfter=self._certificate.notValidAfter.isoformat(),
                hint="stage a new one ('bwscd cert renew', or 'bwscd cert import' for "
                     "one from a CA), upload the connection file, then 'bwscd cert "
                     "activate'",
            )

    def stopService(self):
        super().stopService()
        for call in (self._watching, self._expiry, self._counting, self._sweeping):
            if call is not None and call.running:
                call.stop()
        for part in self._background:
            if part.running:
                part.stopService()
        stopping = [port.stopListening() for port in (self._port, self._viewerPort)
                    if port is not None]
        if stopping:
            return gatherResults(stopping)


class EventSinksService(Service):
    """
    Stops the workers, whose last events come through the main process, then
    lets webhooks finish what they are sending, and closes the event log.
    """

    def __init__(self, eventLog, webhooks, workers):
        self._eventLog = eventLog
        self._webhooks = webhooks
        self._workers = workers

    def startService(self):
        super().startService()
        self._eventLog.start()

    def stopService(self):
        super().stopService()
        d = self._workers.stop()
        d.addBoth(lambda _: gatherResults([webhook.stop() for webhook in self._webhooks]))
        d.addBoth(lambda _: self._eventLog.close())
        return d


def makeViewer(options, credentials, authority, failures, pools, backend, storage, query,
               events, holds, capacity):
    """The web viewer's site: its pages, and the catalog API that accepts its session."""
    sessions = Sessions(credentials, reactor.seconds)
    catalog = CatalogAPI(query, sessionOrToken(sessions, tokenAccount(authority, credentials)),
                         backend, storage.evidence, pools.downloads,
                         Exporter(backend, pools.downloads, events, custody=query.custody),
                         via="viewer")
    pages = Viewer(sessions, credentials, failures, pools.auth, query, catalog,
                   storage.evidence, options["map-tiles"], holds, capacity)
    site = AccessLoggingSite(ViewerRoot(pages, catalog, options["map-tiles"]),
                             timeout=options["idle-timeout"])
    site.headerTimeout = options["header-timeout"]
    site.displayTracebacks = False
    return site


def retentionOf(directory: str, pool):
    """The retention policy, read afresh off the reactor each call (a changed policy applies)."""
    return lambda: pool.run(Settings.load, directory).addCallback(
        lambda settings: settings.retention)


def makeScrub(options, backend, pools, events, storage, query) -> Scrub:
    """The fixity scrub: paced, yielding to this process's uploads, on the checks' threads."""
    def check():
        return FixityCheck(backend, pools.checks, events, SCRUB_ACCOUNT, reactor,
                           pace=Pace(reactor, cap=options["scrub-rate"]),
                           yielding=lambda: storage.admission.busy > 0,
                           known=query.objectDigests)
    return Scrub(backend, check, options["scrub-period"], reactor)


def makeService(options) -> MultiService:
    destination = options["destination"]
    backend = options["storage"]
    service = MultiService()
    workers = connections = upkeep = None
    catalogPath = os.path.join(destination.directory, paths.CATALOG)
    settings = Settings.load(destination.directory)
    if options.get("worker") is None:
        eventLog = EventLog(os.path.join(destination.directory, paths.EVENT_LOG),
                            retention=options["event-log-keep"])
        webhooks = [WebhookSink(url, reactor) for url, _ in options["webhook"]]
        chosen = [webhook if filtering is None else FilteredSink(webhook, filtering)
                  for webhook, (_, filtering) in zip(webhooks, options["webhook"])]
        # The catalog's one writer: workers' events come here too.
        upkeep = CatalogUpkeep(CatalogIndex(
            backend, catalogPath, reactor,
            signed="StoreSignedVideo" in (settings.capabilities or ())), reactor)
        events = Events([LogSink(), eventLog, *chosen, upkeep])
        upkeep.announce = events
        if options["workers"] > 1:
            connections = ConnectionTable.create(options["workers"])
        workers = WorkerProcesses(options.arguments + ["--data", options["data"]],
                                  options["workers"] - 1, events, connections,
                                  [lock.fd for lock in options["locks"]])
        EventSinksService(eventLog, webhooks, workers).setServiceParent(service)
    else:
        events = Events([options["events"]])
        connections = ConnectionTable(options["connections-fd"], options["workers"],
                                      options["worker"])
    authority = TokenAuthority(destination.tokenSecret, options["token-lifetime"])
    credentials = Credentials(settings)
    certificate = None if options["http"] else ServerCertificate(
        destination.certificatePath, destination.privateKeyPath
    )
    registry = Registry(backend, events, ProcessLock(
        os.path.join(destination.directory, paths.REGISTRY_LOCK), reactor))
    pools = Pools(reactor, uploads=options["max-uploads"], downloads=options["max-downloads"])
    documents = PublishedDocuments(
        backend,
        destination.capabilities,
        PublishedCategories(destination.categoryFile, events),
        pools.uploads,
    )
    quota = Quota(options["quota"], os.path.join(destination.directory, paths.QUOTA_COUNTERS))
    # Stopped before the event log closes: its last events are written.
    refusals = RefusalEpisodes(events, reactor, options["refusal-quiet-period"])
    refusals.setServiceParent(service)
    storage = StorageAPI(authority, credentials, backend, registry, events, reactor, pools,
                         documents, quota, refusals, encrypted=destination.encrypted,
                         maxUploads=options["max-uploads"],
                         minimumRate=(options["min-upload-rate"], options["idle-timeout"]))
    query = CatalogQuery(catalogPath, reactor)
    holdFile = HoldFile(destination.directory)
    legalHolds = LegalHolds(holdFile, pools.uploads, events, reactor.seconds)
    holds = HoldLookup(holdFile, query)
    storage.evidence.holds = holds
    sweep = None
    if workers is not None:
        sweep = ExpirySweep(destination.directory, backend, query, holds, events, pools.uploads)
    capacity = Capacity(backend, query.arrivedSince, reactor,
                        retentionOf(destination.directory, pools.uploads))
    catalog = CatalogAPI(query, tokenAccount(authority, credentials), backend, storage.evidence,
                         pools.downloads,
                         Exporter(backend, pools.downloads, events, custody=query.custody),
                         holds=legalHolds)
    # One throttle for both logins, so the viewer is no second way to guess keys.
    failures = FailedLogins(reactor.seconds)
    root = Root(Authentication(credentials, authority, reactor, pools.auth, failures),
                storage, catalog)
    site = AccessLoggingSite(root, timeout=options["idle-timeout"])
    site.headerTimeout = options["header-timeout"]
    site.displayTracebacks = False
    viewerSite = None
    if workers is not None and options["catalog-port"] is not None:
        viewerSite = makeViewer(options, credentials, authority, failures, pools, backend,
                                storage, CatalogQuery(catalogPath, reactor), events,
                                legalHolds, capacity)
    background = []
    if workers is not None:
        background.append(CapacityWatch(capacity, events, options["capacity-warning"]))
        if options["scrub-period"] is not None:
            background.append(makeScrub(options, backend, pools, events, storage, query))
    DestinationService(
        options, site, backend, registry, documents, events, pools,
        credentials, certificate, storage, authority, quota, workers, connections, upkeep,
        viewerSite, sweep, background,
    ).setServiceParent(service)
    return service
