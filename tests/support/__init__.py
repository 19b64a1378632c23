"""
What the tests (and bench/) share, importable as C{tests.support.*}: the
C{[tool:pytest]} section of setup.cfg puts the checkout on C{sys.path}.
conftest.py makes fixtures of them; a test module imports them directly.

  - server: a real C{twistd -n bwscd} on loopback and its clients (swiftclient,
    the swift CLI, raw TLS, HTTPS), the installed commands;
  - recording: a recording as the controller registers and sends it;
  - swift: the status of a refused swiftclient call;
  - storage: what a server leaves in its storage directory;
  - waiting: polling until the server has done something;
  - events: an event sink that keeps what it gets;
  - bodies: a request body fed by hand;
  - reactor: calls into the reactor thread (the C{runningReactor} fixture);
  - processes: C{/proc}: sizes, command lines, descendants, zombies;
  - installing: Debian packages a test needs, or a reason to skip;
  - sshd: a real OpenSSH server for the SFTP backend;
  - backends: the example backend of docs/backends.md.
"""
