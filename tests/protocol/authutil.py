"""Helpers shared by test_auth.py, test_quota.py and test_config.py: token files and the
admin methods' frames (the numbers and reply types are those of proto/tensord.proto)."""
import os

from conftest import Client

M_LIST_SESSIONS, M_KILL_SESSION, M_SET_QUOTA, M_DRAIN, M_SHUTDOWN, M_HEALTH = 8, 9, 10, 11, 12, 13
M_LIST_USERS = 15
PERMISSION_DENIED, UNAVAILABLE, UNAUTHENTICATED = 7, 14, 16

ADMIN_TOKEN = "adm-0123456789abcdef0123"
ALICE_TOKEN = "alice-0123456789abcdef01"
BOB_TOKEN = "bob-0123456789abcdef0123"


def write_tokens(tmp_path, lines=None):
    path = tmp_path / "tokens"
    if lines is None:
        lines = [f"{ADMIN_TOKEN} root admin", f"{ALICE_TOKEN} alice user",
                 "# a comment", "", f"{BOB_TOKEN} bob user  # trailing comment"]
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return str(path)


def client(pb, addr):
    c = Client(pb, addr)
    c.reply_types.update({
        M_LIST_SESSIONS: pb.ListSessionsReply, M_KILL_SESSION: pb.KillSessionReply,
        M_SET_QUOTA: pb.SetQuotaReply, M_DRAIN: pb.DrainReply, M_SHUTDOWN: pb.ShutdownReply,
        M_HEALTH: pb.HealthReply, M_LIST_USERS: pb.ListUsersReply})
    return c


def handshake(c, token, check=True):
    return c.call(1, c.pb.HandshakeRequest(protocol_version=1, client_name="pytest",
                                           auth_token=token), check=check)[0]
