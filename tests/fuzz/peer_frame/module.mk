# Fuzz target for peer frames (raft messages, snapshot chunks, hellos),
# proposed entries and snapshot archives.
$(eval $(call fuzz_target,peer_frame,$(call objs,tests/fuzz/peer_frame/fuzz_peer_frame.c server/raftmsg.c server/snap_archive.c) $(BUILD)/lib/libproto.a $(BUILD)/lib/libcommon.a,-lprotobuf-c))
