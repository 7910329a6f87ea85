"""The server source every conformance case comes from: repository, commit, path.

J is the original Java proxy at the commit that set version 2.6.3; C the C# fork at tag v11.10.3;
N new-api upstream main (read from the fork SolveaCX/new-api, whose history contains this commit
unchanged). Paths are repository-relative; line numbers refer to these commits.
"""

from __future__ import annotations

J_REPO = "novicezk/midjourney-proxy@fd045f959d8b0990a627027d9083f4491620f41b"
C_REPO = "trueai-org/midjourney-proxy@ed32197657d779dcd4ccd1f685ae0a251fba47b6"
N_REPO = "QuantumNous/new-api@65b16547329625f619cf797ae1eb9b748525056c"

_J_SRC = "src/main/java/com/github/novicezk/midjourney/"
_C_API = "src/Midjourney.API/"
_C_BASE = "src/Midjourney.Base/"
_C_SERVICES = "src/Midjourney.Services/"


def j(path: str) -> str:
    """A J source file (``controller/TaskController.java:37-42``)."""
    full = path if path.startswith(("src/", "pom.xml")) else _J_SRC + path
    return f"{J_REPO} {full}"


def c(path: str) -> str:
    """A C source file: ``Controllers/…`` (API), ``Dto/…``/``Models/…`` (Base), services."""
    if path.startswith(("Controllers/", "Filters/", "WorkContext", "SimpleAuth", "RateLimiting")):
        full = _C_API + path
    elif path.startswith(("Dto/", "Models/")):
        full = _C_BASE + path
    elif path.startswith(("TaskService", "DiscordService", "FaceSwapService", "VideoFaceSwap")):
        full = _C_SERVICES + path
    else:
        full = path
    return f"{C_REPO} {full}"


def n(path: str) -> str:
    """An N source file (``relay/mjproxy_handler.go:318-331``)."""
    return f"{N_REPO} {path}"
