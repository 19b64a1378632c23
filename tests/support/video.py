"""
Small real videos for the tests: H.264 in MP4 and in Matroska, made with
ffmpeg (Debian's package, installed when missing) from its test pattern,
a few seconds long at a tiny size, so a browser really decodes them.
"""

import os
import subprocess

from tests.support.installing import installPrograms

FFMPEG = "ffmpeg"


def makeClip(path: str, seconds: int = 3, container: str = "mp4") -> bytes:
    """
    Make (once: an existing file is kept) a clip of C{seconds} of ffmpeg's
    C{testsrc}, H.264 at 160x120 and 10 frames per second, at C{path}.
    @return: its bytes.
    """
    if not os.path.exists(path):
        installPrograms([FFMPEG], ["ffmpeg"])
        command = [FFMPEG, "-loglevel", "error", "-y", "-f", "lavfi",
                   "-i", f"testsrc=size=160x120:rate=10:duration={seconds}",
                   "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
                   "-g", "10", "-f", {"mp4": "mp4", "mkv": "matroska"}[container]]
        if container == "mp4":
            command += ["-movflags", "+faststart"]  # playable while it downloads
        temporary = path + ".part"
        subprocess.run([*command, temporary], check=True, capture_output=True)
        os.replace(temporary, path)
    with open(path, "rb") as f:
        return f.read()
