/*
 * Fuzz target for what a peer can send a member: the first byte picks the
 * decoder, as the frame kind does on the wire (plus two more a member reads
 * from peers: the hello and the snapshot archive).
 *   0: a raft message (srv_raftmsg_decode), re-encoded and decoded again;
 *   1: a snapshot chunk; 2: a peer hello; 3: an InternalRequest (what a
 *   leader's log entry carries); 4: a snapshot archive (srv_snap_unpack).
 * Nothing may crash, leak or read out of bounds; a message that decodes must
 * survive a round trip unchanged in type and entry count.
 */
#include "common/buf.h"
#include "proto/internal.pb-c.h"
#include "proto/raft.pb-c.h"
#include "server/raftmsg.h"
#include "server/snapshot.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void raft_roundtrip(const uint8_t *d, size_t n)
{
	struct raft_message m, m2;
	struct srv_raftmsg_holder *h, *h2;
	struct moor_buf b;

	if (srv_raftmsg_decode(d, n, 4096, &m, &h) != 0)
		return;
	moor_buf_init(&b, NULL);
	if (srv_raftmsg_encode(&m, &b) == 0 &&
	    srv_raftmsg_decode(b.data, b.len, 4096, &m2, &h2) == 0) {
		if (m2.type != m.type || m2.n_entries != m.n_entries || m2.term != m.term ||
		    (m.snapshot == NULL) != (m2.snapshot == NULL))
			abort();
		srv_raftmsg_free(h2);
	}
	moor_buf_free(&b);
	srv_raftmsg_free(h);
}

static void archive(const uint8_t *d, size_t n)
{
	char path[64], dir[64], err[512];
	FILE *f;

	snprintf(path, sizeof path, "/tmp/moor-fuzz-arc.%d", (int)getpid());
	snprintf(dir, sizeof dir, "/tmp/moor-fuzz-dir.%d", (int)getpid());
	f = fopen(path, "wb");
	if (!f)
		return;
	fwrite(d, 1, n, f);
	fclose(f);
	srv_snap_unpack(path, dir, err, sizeof err);
	srv_snap_rmdir(dir);
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > (1u << 20))
		return 0;
	const uint8_t *d = data + 1;
	size_t n = size - 1;

	switch (data[0] % 5) {
	case 0:
		raft_roundtrip(d, n);
		break;
	case 1: {
		Moorraftpb__SnapshotChunk *c = moorraftpb__snapshot_chunk__unpack(NULL, n, d);
		if (c)
			moorraftpb__snapshot_chunk__free_unpacked(c, NULL);
		break;
	}
	case 2: {
		Moorraftpb__PeerHello *h = moorraftpb__peer_hello__unpack(NULL, n, d);
		if (h)
			moorraftpb__peer_hello__free_unpacked(h, NULL);
		break;
	}
	case 3: {
		Moorpb__InternalRequest *r = moorpb__internal_request__unpack(NULL, n, d);
		if (r)
			moorpb__internal_request__free_unpacked(r, NULL);
		break;
	}
	default:
		archive(d, n);
		break;
	}
	return 0;
}
