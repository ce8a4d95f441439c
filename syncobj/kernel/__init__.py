"""The pure Raft kernel: no sockets, threads, clocks, files or global randomness.

A driver feeds it inputs (`tick`, `receive`, `propose`, ...) carrying the
current time and gets back one `Batch` of outputs per call; see `batch.py`
for the order in which a batch must be carried out.
"""

from .batch import (Batch, Event, LeaderChanged, MembershipChanged, ProposalResult, ReadIndexResult,
                    RoleChanged, Send, TransferResult)
from .config import RaftConfig
from .errors import ConfigError, InvalidMessage, KernelError, KernelUsageError
from .messages import (MESSAGE_TYPES, AppendEntries, AppendEntriesResponse, ForwardProposal, ForwardResult,
                       InstallSnapshot, InstallSnapshotResponse, Message, PreVote, PreVoteResponse, ReadIndexRequest,
                       ReadIndexResponse, RequestVote, RequestVoteResponse, TimeoutNow, from_wire, to_wire)
from .raft import Raft, Restored
from .status import KernelStatus, PeerProgress
from .types import (Entry, EntryKind, FailReason, HardState, Membership, MembershipChange, Role, Snapshot,
                    SnapshotMeta)

__all__ = [
    "Batch", "Event", "LeaderChanged", "MembershipChanged", "ProposalResult", "ReadIndexResult", "RoleChanged",
    "Send", "TransferResult", "RaftConfig", "ConfigError", "InvalidMessage", "KernelError", "KernelUsageError",
    "MESSAGE_TYPES", "Message", "from_wire", "to_wire", "AppendEntries", "AppendEntriesResponse", "ForwardProposal",
    "ForwardResult", "InstallSnapshot", "InstallSnapshotResponse", "PreVote", "PreVoteResponse", "ReadIndexRequest",
    "ReadIndexResponse", "RequestVote", "RequestVoteResponse", "TimeoutNow", "Raft", "Restored", "KernelStatus", "PeerProgress",
    "Entry", "EntryKind", "FailReason", "HardState", "Membership", "MembershipChange", "Role", "Snapshot",
    "SnapshotMeta",
]
