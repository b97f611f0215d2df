# raft/: the consensus core, a pure state machine (see raft/raft.h).
raft_SRCS := $(wildcard raft/*.c)
$(eval $(call module_lib,raft,$(raft_SRCS)))
