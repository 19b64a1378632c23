"""
The web viewer for evidence clerks, on a listener of its own (C{--catalog-port},
default 8444, the server's certificate): login with a reader's or an
admin's account (L{session}: signed, expiring session cookies, CSRF tokens,
the failed-login throttle), server-rendered pages (L{pages}: people, a
person's recordings, search, one recording with its player, timeline and
map), the security headers every answer carries, the static files (its own
script and style sheet, and Leaflet from the XStatic-Leaflet package) and,
mounted below C{/catalog/v1/}, the catalog's JSON API and clip bytes for
its own pages (L{site}).

Reads the catalog through L{bwscd.catalog.query.CatalogQuery} only.  May
import every layer up to and including L{bwscd.protocol}; never
L{bwscd.service}, L{bwscd.tools} or L{bwscd.commands}.
"""
