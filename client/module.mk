# client/: libmoor (static and shared, with a pkg-config file), moorctl and
# the example controller.
#
# libmoor is self-contained: its archive and its shared object carry the
# pieces of common/ and the generated protobuf-c code they use, compiled
# position-independent under $(BUILD)/pic, so a user links -lmoor plus
# libcurl and libprotobuf-c. The shared object exports only the moor_*
# names of moor.h (client/libmoor.map).
MOOR_VERSION := 0.1.0
PREFIX ?= /usr/local

client_LIB_SRCS := client/client.c client/transport.c client/kv.c client/lease.c client/watch.c \
	client/cluster.c client/recipes.c
client_PIC_OBJS := $(patsubst %.c,$(BUILD)/pic/%.o,$(client_LIB_SRCS) $(wildcard common/*.c) proto/pbcheck.c) \
	$(patsubst %,$(BUILD)/pic/gen/proto/%.pb-c.o,rpc kv lock)
MOOR_LDLIBS := -lcurl -lprotobuf-c -lpthread

$(BUILD)/pic/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) -fPIC -MMD -MP -c $< -o $@

$(BUILD)/pic/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(OPT) -std=c11 -Wall -Werror -pthread -fPIC $(filter -fsanitize=%,$(CFLAGS_ALL)) -c $< -o $@

-include $(shell find $(BUILD)/pic -name '*.d' 2>/dev/null)

LIBS += $(BUILD)/lib/libmoor.a $(BUILD)/lib/libmoor.so $(BUILD)/lib/pkgconfig/moor.pc
$(BUILD)/lib/libmoor.a: $(client_PIC_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/lib/libmoor.so: $(client_PIC_OBJS) client/libmoor.map
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -shared -Wl,-soname,libmoor.so.0 -Wl,--version-script=client/libmoor.map \
		-o $@ $(filter %.o,$^) $(MOOR_LDLIBS)
	ln -sf libmoor.so $(@D)/libmoor.so.0

$(BUILD)/lib/pkgconfig/moor.pc: client/moor.pc.in client/module.mk
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(MOOR_VERSION)|g' $< >$@

MOORCTL_SRCS := $(wildcard client/moorctl*.c)
ifneq ($(MOORCTL_SRCS),)
BINS += $(BUILD)/bin/moorctl
$(eval $(call link_bin,$(BUILD)/bin/moorctl,$(call objs,$(MOORCTL_SRCS)) $(BUILD)/lib/libmoor.a,$(MOOR_LDLIBS) -ljansson))
endif
BINS += $(BUILD)/bin/moor-example-controller $(BUILD)/bin/moor-example-hello
$(eval $(call link_bin,$(BUILD)/bin/moor-example-controller,$(call objs,client/examples/controller.c) $(BUILD)/lib/libmoor.a,$(MOOR_LDLIBS)))
$(eval $(call link_bin,$(BUILD)/bin/moor-example-hello,$(call objs,client/examples/hello.c) $(BUILD)/lib/libmoor.a,$(MOOR_LDLIBS)))

# `make install-moor`: header, libraries and pkg-config file under $(PREFIX).
.PHONY: install-moor
install-moor: $(BUILD)/lib/libmoor.a $(BUILD)/lib/libmoor.so $(BUILD)/lib/pkgconfig/moor.pc $(BUILD)/bin/moorctl
	install -d $(DESTDIR)$(PREFIX)/include/moor/client $(DESTDIR)$(PREFIX)/include/moor/common \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 client/moor.h $(DESTDIR)$(PREFIX)/include/moor/client/
	install -m 644 common/error.h $(DESTDIR)$(PREFIX)/include/moor/common/
	install -m 644 $(BUILD)/lib/libmoor.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/lib/libmoor.so $(DESTDIR)$(PREFIX)/lib/libmoor.so.$(MOOR_VERSION)
	ln -sf libmoor.so.$(MOOR_VERSION) $(DESTDIR)$(PREFIX)/lib/libmoor.so.0
	ln -sf libmoor.so.0 $(DESTDIR)$(PREFIX)/lib/libmoor.so
	install -m 644 $(BUILD)/lib/pkgconfig/moor.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(BUILD)/bin/moorctl $(DESTDIR)$(PREFIX)/bin/
