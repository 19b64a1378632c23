"""
What the tests share, importable as C{tests.support.*} (setup.cfg puts the
checkout on C{sys.path} for pytest): the running server, the controller's
ways, clients, waiting, and the installers of the programs tests need.
conftest.py makes fixtures of them.
"""
