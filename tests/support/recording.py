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

    def start(self, swift, status: str = "Transferring") -> str:
        """
        What the controller does before it sends a recording's clips:
        register the user and the camera, create the container.
        """
        swift.put_container("Users")
        swift.put_object("Users", self.user, b"", headers={"X-Object-Meta-Name": "Officer"})
        swift.put_container("Devices")
        swift.put_object("Devices", self.device, b"", headers={"X-Object-Meta-Name": "Cam"})
        swift.put_container(self.container, headers={"X-Container-Meta-Status": status})
        return self.container
