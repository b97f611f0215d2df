/*
 * raft messages on the wire: the raft core's C structs (raft/raft.h) to and
 * from protobuf moorraftpb.Message (proto/raft.proto), the frames of the peer
 * transport. Decoding validates what a peer sent before the core sees it.
 */
#ifndef MOOR_SERVER_RAFTMSG_H
#define MOOR_SERVER_RAFTMSG_H

#include "common/buf.h"
#include "raft/raft.h"

#include <stddef.h>
#include <stdint.h>

/* Appends the encoded message to out. MOOR_ENOMEM / MOOR_ETOOLARGE. */
int srv_raftmsg_encode(const struct raft_message *m, struct moor_buf *out);

/*
 * Decodes a frame into *m. The message's entries and snapshot point into
 * memory owned by *holder, valid until srv_raftmsg_free(holder).
 * MOOR_EPROTO for bytes that are not a well-formed message (garbage, an
 * unknown type, more entries than max_entries), with nothing to free.
 */
struct srv_raftmsg_holder;
int srv_raftmsg_decode(const uint8_t *data, size_t len, size_t max_entries, struct raft_message *m,
                       struct srv_raftmsg_holder **holder);
void srv_raftmsg_free(struct srv_raftmsg_holder *holder);

#endif
