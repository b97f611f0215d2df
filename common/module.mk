# common/: error codes, logger callback, allocator, CRC32C, byte buffers.
# Pure code with no OS access beyond malloc: every module may link it.
common_SRCS := $(wildcard common/*.c)
$(eval $(call module_lib,common,$(common_SRCS)))
