# proto/: .proto files compiled by protobuf-c into $(BUILD)/gen/proto.
PROTOS := proto/kv.proto proto/rpc.proto proto/lock.proto proto/raft.proto proto/internal.proto
PROTO_C := $(patsubst %.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
GEN_HDRS += $(PROTO_H)

$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen $<

# Keep the generated C around for the pattern rule below.
.SECONDARY: $(PROTO_C) $(PROTO_H)

LIBS += $(BUILD)/lib/libproto.a
$(BUILD)/lib/libproto.a: $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(PROTO_C)) $(call objs,proto/pbcheck.c)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^
