"""A recording as the controller sends it: its user, its camera, its container."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Recording:
    """A recording container, named for its user and camera as the API says."""

    user: str = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"
    device: str = "B8A44F000001"
    time: str = "20240501T101500Z"

    @property
    def container(self) -> str:
        return f"{self.user}_{self.device}_{self.time}"

    def register(self, swift, user: dict | None = None, device: dict | None = None) -> None:
        """
        What the controller does before it sends a recording: register the
        user and the camera, C{user} and C{device} their headers (a name each
        by default).
        """
        swift.put_container("Users")
        swift.put_object("Users", self.user, b"",
                         headers=user or {"X-Object-Meta-Name": "Officer"})
        swift.put_container("Devices")
        swift.put_object("Devices", self.device, b"",
                         headers=device or {"X-Object-Meta-Name": "Cam"})

    def start(self, swift, status: str | None = "Transferring", **registration) -> str:
        """
        Register (see L{register}) and create the container, with its
        C{Status} unless L{None}: what comes before a recording's clips.
        """
        self.register(swift, **registration)
        swift.put_container(self.container, headers={"X-Container-Meta-Status": status}
                            if status is not None else {})
        return self.container
