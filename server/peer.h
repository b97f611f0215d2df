/*
 * The peer transport: long-lived TCP connections between members, carrying
 * length-prefixed frames (a 4-byte big-endian length, then the bytes: in
 * moord, a protobuf moorraftpb.Message or SnapshotChunk).
 *
 * Each member dials every peer it knows and sends only on that outgoing
 * connection; it receives only on the connections peers dialled to it. The
 * first frame of an outgoing connection is a PeerHello (version, cluster id,
 * from, to); the receiver checks it and closes the connection on a wrong
 * cluster id, a wrong target, garbage, or a frame over max_frame_bytes, with
 * a log line — the member itself keeps running.
 *
 * Sending copies the frame into the peer's queue and returns at once; all
 * queued frames go out in one uv_write (many messages per write). The queue
 * is bounded (max_queue_bytes, max_queue_frames): when full, or while the
 * peer is not connected, a send is refused with MOOR_EUNAVAILABLE and the
 * frame dropped — raft retransmits, and a dead peer never grows memory.
 * Lost connections are redialled with exponential backoff (50 ms doubling to
 * 2 s).
 *
 * TLS (cfg.tls, see peer_tls.h): an https:// listen URL accepts only TLS,
 * and a peer whose URL is https:// is dialled with TLS; framing, batching,
 * bounds and redials are the same over TLS. A dialled connection counts as
 * connected (and takes frames) once its handshake is done, at most
 * SRV_PEER_TLS_HANDSHAKE_MS after the TCP connect. A failed handshake
 * closes that connection with a log line naming the peer and OpenSSL's
 * reason; a dialled one is redialled with the backoff. An accepted
 * connection, plain or TLS, that has not sent a valid hello within
 * hello_timeout_ms is closed. Outgoing connections bind to this member's
 * own advertised host, so tests can cut the links between two addresses.
 *
 * Threading: everything on the loop thread.
 */
#ifndef MOOR_SERVER_PEER_H
#define MOOR_SERVER_PEER_H

#include "common/log.h"
#include "server/config.h"
#include "server/peer_tls.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SRV_PEER_PROTO_VERSION 1
/* The one byte a member ever sends back on a connection it accepted: "you
 * were removed from this cluster" (etcd's 410 Gone). */
#define SRV_PEER_GONE 0x52
/* The longest a dialled TLS handshake may take before it is given up. */
#define SRV_PEER_TLS_HANDSHAKE_MS 5000

struct srv_peer_transport;

struct srv_peer_config {
	/* 0: not known yet (a member joining an existing cluster): the first
	 * valid hello's cluster id is adopted and on_cluster_id is called. */
	uint64_t cluster_id;
	void (*on_cluster_id)(void *ctx, uint64_t cluster_id);
	/* 0: not known yet (a member joining an existing cluster learns its
	 * id from the leader's first message, see srv_peer_set_self): hellos
	 * addressed to any id are taken, and nothing is dialled. */
	uint64_t self_id;
	const char *bind_host;   /* source address for dials; NULL: any */
	size_t max_frame_bytes;  /* default 16 MiB */
	size_t max_queue_bytes;  /* per peer; default 64 MiB */
	size_t max_queue_frames; /* per peer; default 8192 */
	/* An accepted connection without a valid hello (over TLS: a finished
	 * handshake and a hello) this long after it was accepted is closed;
	 * default 10000. */
	unsigned hello_timeout_ms;
	/* A frame from `from`. Return 0, or non-zero to close that connection
	 * (the frame did not decode, say). `data` lives only during the call. */
	int (*on_frame)(void *ctx, uint64_t from, const uint8_t *data, size_t len);
	/* Non-zero when `from` was removed from the cluster: its hello is
	 * answered with SRV_PEER_GONE and the connection closed. May be NULL. */
	int (*is_removed)(void *ctx, uint64_t from);
	/* Our advertised peer URL, sent in every hello (copied); may be NULL. */
	const char *self_url;
	/* A hello from `from` was accepted; `url` is the sender's advertised
	 * peer URL ("" when it sent none). May be NULL. */
	void (*on_hello)(void *ctx, uint64_t from, const char *url);
	/* A peer told us we were removed from the cluster. May be NULL. */
	void (*on_gone)(void *ctx, uint64_t by);
	/* A peer's outgoing connection came up (1) or went down (0). May be NULL. */
	void (*on_peer_state)(void *ctx, uint64_t id, int connected);
	/* Peer TLS (borrowed; outlives the transport). NULL: none, and then
	 * an https listen URL is refused at start and a peer whose URL is
	 * https cannot be dialled. With it, https listen URLs serve TLS and
	 * peers are dialled with TLS or plain as their URL says. */
	struct srv_peer_tls_ctx *tls;
	void *ctx;
	const struct moor_logger *logger;
};

/* Listens on `listen` (a URL list; port 0 picks a free port) and returns the
 * transport. Errors: a negative code with a message naming the URL in err. */
int srv_peer_transport_start(uv_loop_t *loop, const struct srv_peer_config *cfg,
                             const struct srv_url_list *listen, struct srv_peer_transport **out,
                             char *err, size_t errlen);

/* The port the i-th listen URL bound. */
unsigned srv_peer_transport_port(const struct srv_peer_transport *t, int i);

/* Starts dialling peer `id` at `url` (re-adding an id replaces its URL and
 * reconnects). MOOR_EINVAL for id 0 or self, MOOR_ENOMEM. */
int srv_peer_add(struct srv_peer_transport *t, uint64_t id, const struct srv_url *url);

/* The member's own id, once a joining member learned it. From then on
 * only hellos addressed to it are taken. */
void srv_peer_set_self(struct srv_peer_transport *t, uint64_t self_id);

/* Stops dialling `id` and drops its queue; MOOR_ENOTFOUND if unknown. */
int srv_peer_remove(struct srv_peer_transport *t, uint64_t id);

/* Queues one frame for `to` (copied). 0, MOOR_ENOTFOUND (unknown peer),
 * MOOR_EUNAVAILABLE (not connected or queue full: dropped), MOOR_ETOOLARGE. */
int srv_peer_send(struct srv_peer_transport *t, uint64_t to, const void *data, size_t len);

/* Closes every connection `id` dialled to us, telling it SRV_PEER_GONE
 * (it was removed from the cluster). */
void srv_peer_evict(struct srv_peer_transport *t, uint64_t id);

/* Bytes queued for `id` and not yet written (0 for an unknown peer). */
size_t srv_peer_queued_bytes(const struct srv_peer_transport *t, uint64_t id);

/* 1 when the outgoing connection to `id` is up. */
int srv_peer_connected(const struct srv_peer_transport *t, uint64_t id);

/* Counters, for metrics and tests. */
struct srv_peer_stats {
	uint64_t frames_sent, frames_received, frames_dropped, writes, connections_refused;
	uint64_t tls_failures; /* handshakes failed, either direction */
};
void srv_peer_transport_stats(const struct srv_peer_transport *t, struct srv_peer_stats *out);

/* Closes every connection and the listeners; the transport is freed once its
 * handles have closed (keep running the loop). */
void srv_peer_transport_stop(struct srv_peer_transport *t);

#endif
