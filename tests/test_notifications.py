"""
Category notifications (docs/retention.md, Category notifications)
through a real C{twistd bwscd}: a webhook that subscribes to a category
is told once of a recording whose bookmark of that category arrives after
its clips, and never of one of another category.
"""

import time

from tests.support.catalog import ANNA_1, CAM_1, R1, R2, CatalogClient, meta, register
from tests.support.waiting import waitFor
from tests.support.webhooks import webhookReceiver


def _bookmark(swift, container, name, categoryId, categoryName):
    swift.put_object(container, name, b"noted", headers=meta("Object", {
        "Categoryid": categoryId, "Categoryname": categoryName}))


def _categories(reader, id):
    answer = reader.get(f"recordings/{id}")
    return answer.json()["categories"] if answer.status_code == 200 else None


def test_one_notification_per_recording_of_the_category(launch, dataDirectory):
    with webhookReceiver() as (url, received):
        server = launch(dataDirectory,
                        "--webhook", f"{url};types=recording.categorised;categories=homicide")
        swift = server.connection()
        reader = CatalogClient.of(server, server.addAccount("clerk", "reader"))
        register(swift)
        for container in (R1, R2):
            swift.put_container(container, headers=meta("Container", {"Status": "Transferring"}))
            swift.put_object(container, "20240501_101430_1.mkv", b"clip" * 100)
        # The clips are catalogued before any bookmark arrives.
        assert waitFor(lambda: _categories(reader, R1) == [] and _categories(reader, R2) == [])
        _bookmark(swift, R1, "bookmark_20240501T101540Z_1", "4", "Homicide")
        _bookmark(swift, R2, "bookmark_20240502T080010Z_2", "5", "Traffic")
        assert waitFor(lambda: _categories(reader, R1) and _categories(reader, R2))
        # More of the same: a second bookmark, the recording completed.
        _bookmark(swift, R1, "bookmark_20240501T101550Z_1", "4", "Homicide")
        swift.post_container(R1, headers=meta("Container", {"Status": "Complete"}))
        assert waitFor(lambda: reader.json(f"recordings/{R1}")["status"] == "Complete"
                       and len(reader.json(f"recordings/{R1}")["bookmarks"]) == 2)
        assert waitFor(lambda: received)
        time.sleep(1)  # anything more would have come by now
        assert [(e["type"], e["container"], e["categoryName"]) for e in received] == [
            ("recording.categorised", R1, "Homicide")]
        assert received[0]["categoryId"] == "4" and received[0]["person"] == ANNA_1
        assert received[0]["device"] == CAM_1
        # Every category appearing is an event; the webhook chose one.
        assert sorted((e["container"], e["categoryId"])
                      for e in server.eventsOf("recording.categorised")) == sorted([(R1, "4"), (R2, "5")])
