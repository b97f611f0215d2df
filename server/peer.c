/*
 * The peer transport (see peer.h): outgoing connections that send, incoming
 * connections that receive, framed, bounded, redialled with backoff; over
 * TLS (peer_tls.c) where a URL is https, the bytes passing through a TLS
 * session between the socket and the framing.
 */
#include "server/peer.h"

#include "common/assert.h"
#include "common/buf.h"
#include "common/error.h"
#include "proto/raft.pb-c.h"

#include <errno.h>
#include <stdbool.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES_PER_WRITE 1024
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define READ_CHUNK (64 * 1024)
/* Plaintext encrypted into one TLS write (at least one frame). */
#define TLS_MAX_WRITE_BYTES (1u << 20)

struct frame {
	struct frame *next;
	size_t len; /* header + payload */
	uint8_t data[];
};

struct out_conn;

struct peer {
	struct srv_peer_transport *t;
	struct peer *next;
	uint64_t id;
	struct srv_url url;
	struct out_conn *conn;
	uv_timer_t timer;
	unsigned backoff_ms;
	struct frame *qhead, *qtail;
	size_t qbytes, qframes;
	char last_refusal[640]; /* logged once at warn level, then at debug */
};

struct out_conn {
	uv_tcp_t tcp;
	uv_connect_t connect_req;
	uv_write_t write_req;
	struct srv_peer_transport *t;
	struct peer *peer; /* NULL once the peer let go of it */
	int connected;
	int writing; /* writes in flight: 0 or 1 plain, any number over TLS */
	struct frame *inflight;
	uv_buf_t *bufs;
	char rbuf[64];
	struct srv_peer_tls *tls; /* NULL for a plain connection */
	char *tbuf;               /* READ_CHUNK bytes of ciphertext, with tls */
	uv_getaddrinfo_t gai;     /* a name being resolved off the loop */
	int resolving;            /* gai in flight: its callback closes tcp */
	struct sockaddr_storage dst;
};

struct in_conn {
	uv_tcp_t tcp;
	struct srv_peer_transport *t;
	struct in_conn *next, *prev;
	uint8_t *rbuf;
	size_t rlen, rcap;
	int hello_ok, closing;
	uint64_t from;
	uint64_t accepted_ms; /* uv_now when accepted, for hello_timeout_ms */
	char remote[64];
	struct srv_peer_tls *tls; /* on an https listener */
	uint8_t *tbuf;            /* READ_CHUNK bytes of ciphertext, with tls */
	int tls_done;             /* handshake finished */
};

/* One write of ciphertext (over TLS the bytes are not the frames'). */
struct tls_wreq {
	uv_write_t req;
	void *conn;
	uv_buf_t buf;
	char data[];
};

struct srv_peer_transport {
	uv_loop_t *loop;
	struct srv_peer_config cfg;
	uv_tcp_t listeners[SRV_MAX_URLS];
	unsigned ports[SRV_MAX_URLS];
	int listener_tls[SRV_MAX_URLS];
	int nlisteners;
	uv_timer_t sweep; /* closes accepted connections that sent no hello */
	int sweep_open;
	struct peer *peers;
	struct in_conn *ins;
	int handles; /* open libuv handles; freed at zero once stopping */
	int stopping;
	struct srv_peer_stats stats;
	char self_url[256]; /* cfg.self_url, copied */
};

#define LOG(t, lvl, ...) moor_log((t)->cfg.logger, lvl, "peer", __VA_ARGS__)

/* Before a TLS session is made: new certificate files are picked up. */
static void tls_reload(struct srv_peer_transport *t)
{
	char msg[1200];
	int r = srv_peer_tls_reload(t->cfg.tls, msg, sizeof msg);

	if (r)
		LOG(t, r > 0 ? MOOR_LOG_INFO : MOOR_LOG_WARN, "%s", msg);
}

static void maybe_free(struct srv_peer_transport *t)
{
	if (t->stopping && t->handles == 0)
		free(t);
}

static void frames_free(struct frame *f)
{
	while (f) {
		struct frame *n = f->next;
		free(f);
		f = n;
	}
}

static struct frame *frame_new(const void *data, size_t len)
{
	struct frame *f = malloc(sizeof *f + 4 + len);

	if (!f)
		return NULL;
	f->next = NULL;
	f->len = 4 + len;
	moor_put_be32(f->data, (uint32_t)len);
	if (len)
		memcpy(f->data + 4, data, len);
	return f;
}

/* Writes the ciphertext `tls` holds in one uv_write; cb frees the request.
 * 0 (also when there was none), or a negative code; *count is incremented
 * per write started. */
static int tls_send(uv_stream_t *s, struct srv_peer_tls *tls, void *conn, uv_write_cb cb,
                    int *count)
{
	size_t n = srv_peer_tls_pending(tls);
	struct tls_wreq *w;
	int rc;

	if (n == 0)
		return 0;
	w = malloc(sizeof *w + n);
	if (!w)
		return MOOR_ENOMEM;
	w->conn = conn;
	w->buf = uv_buf_init(w->data, (unsigned)srv_peer_tls_take(tls, w->data, n));
	w->req.data = w;
	rc = uv_write(&w->req, s, &w->buf, 1, cb);
	if (rc < 0) {
		free(w);
		return rc;
	}
	if (count)
		(*count)++;
	return 0;
}

/* The last words before a close (an alert, the gone byte): written now if
 * the socket takes them, else lost, as the plain gone byte may be. */
static void tls_send_now(uv_stream_t *s, struct srv_peer_tls *tls)
{
	char b[4096];
	size_t n;

	while ((n = srv_peer_tls_take(tls, b, sizeof b)) > 0) {
		uv_buf_t ub = uv_buf_init(b, (unsigned)n);
		if (uv_try_write(s, &ub, 1) != (int)n)
			break;
	}
}

static const char *errtext(int rc)
{
	return rc == MOOR_ENOMEM ? "out of memory" : uv_strerror(rc);
}

static void queue_drop(struct peer *p)
{
	p->t->stats.frames_dropped += p->qframes;
	frames_free(p->qhead);
	p->qhead = p->qtail = NULL;
	p->qbytes = p->qframes = 0;
}

/* ---- outgoing ---- */

static void peer_dial(struct peer *p);

static void on_out_closed(uv_handle_t *h)
{
	struct out_conn *c = h->data;
	struct srv_peer_transport *t = c->t;

	frames_free(c->inflight);
	free(c->bufs);
	srv_peer_tls_free(c->tls);
	free(c->tbuf);
	free(c);
	t->handles--;
	maybe_free(t);
}

static void on_backoff(uv_timer_t *timer)
{
	peer_dial(timer->data);
}

/* The connection failed or closed: let go of it, drop what was queued for
 * it (raft retransmits), and redial after the backoff. */
static void out_fail(struct out_conn *c, const char *why)
{
	struct peer *p = c->peer;

	if (p) {
		struct srv_peer_transport *t = p->t;
		if (c->connected) {
			LOG(t, MOOR_LOG_WARN, "lost connection to peer %016llx at %s: %s",
			    (unsigned long long)p->id, p->url.text, why);
			if (t->cfg.on_peer_state)
				t->cfg.on_peer_state(t->cfg.ctx, p->id, 0);
		}
		p->conn = NULL;
		queue_drop(p);
		if (!t->stopping) {
			uv_timer_start(&p->timer, on_backoff, p->backoff_ms, 0);
			p->backoff_ms =
			    p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
		}
	}
	c->peer = NULL;
	c->connected = 0;
	if (c->resolving) {
		uv_cancel((uv_req_t *)&c->gai); /* its callback closes tcp */
		return;
	}
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_out_closed);
}

/* A dialled connection refused before it was up (a TLS handshake that
 * failed): said at warn level once per reason, then at debug level while
 * it repeats on every redial. */
static void out_refuse(struct out_conn *c, const char *why)
{
	struct peer *p = c->peer;

	if (p) {
		struct srv_peer_transport *t = p->t;
		int same = strcmp(p->last_refusal, why) == 0;
		moor_log(t->cfg.logger, same ? MOOR_LOG_DEBUG : MOOR_LOG_WARN, "peer",
		         "cannot connect to peer %016llx at %s: %s", (unsigned long long)p->id,
		         p->url.text, why);
		snprintf(p->last_refusal, sizeof p->last_refusal, "%s", why);
		if (c->tls)
			t->stats.tls_failures++;
	}
	out_fail(c, why);
}

static void peer_flush(struct peer *p);

static void on_tls_out_written(uv_write_t *req, int status)
{
	struct tls_wreq *w = req->data;
	struct out_conn *c = w->conn;

	free(w);
	c->writing--;
	if (status < 0) {
		out_fail(c, uv_strerror(status));
		return;
	}
	if (c->peer && !c->writing)
		peer_flush(c->peer);
}

/* Over TLS: encrypts queued frames (up to TLS_MAX_WRITE_BYTES of them,
 * freeing each) and writes the ciphertext in one uv_write. */
static void peer_flush_tls(struct peer *p)
{
	struct out_conn *c = p->conn;
	struct frame *f;
	unsigned n = 0;
	size_t bytes = 0;
	int rc;

	while ((f = p->qhead) && n < MAX_FRAMES_PER_WRITE &&
	       (n == 0 || bytes + f->len <= TLS_MAX_WRITE_BYTES)) {
		if (srv_peer_tls_write(c->tls, f->data, f->len) != 0) {
			out_fail(c, srv_peer_tls_error(c->tls));
			return;
		}
		p->qhead = f->next;
		if (!p->qhead)
			p->qtail = NULL;
		p->qbytes -= f->len;
		p->qframes--;
		bytes += f->len;
		n++;
		free(f);
	}
	p->t->stats.frames_sent += n;
	p->t->stats.writes++;
	rc = tls_send((uv_stream_t *)&c->tcp, c->tls, c, on_tls_out_written, &c->writing);
	if (rc < 0)
		out_fail(c, errtext(rc));
}

static void on_written(uv_write_t *req, int status)
{
	struct out_conn *c = req->data;

	c->writing = 0;
	frames_free(c->inflight);
	c->inflight = NULL;
	free(c->bufs);
	c->bufs = NULL;
	if (status < 0) {
		out_fail(c, uv_strerror(status));
		return;
	}
	if (c->peer)
		peer_flush(c->peer);
}

static void peer_flush(struct peer *p)
{
	struct out_conn *c = p->conn;
	struct frame *f;
	unsigned n = 0;
	int rc;

	if (!c || !c->connected || c->writing || !p->qhead)
		return;
	if (c->tls) {
		peer_flush_tls(p);
		return;
	}
	c->bufs = malloc(sizeof *c->bufs * MAX_FRAMES_PER_WRITE);
	if (!c->bufs)
		return; /* retried on the next send */
	c->inflight = p->qhead;
	for (f = p->qhead; f && n < MAX_FRAMES_PER_WRITE; f = f->next) {
		c->bufs[n++] = uv_buf_init((char *)f->data, (unsigned)f->len);
		p->qbytes -= f->len;
		p->qframes--;
		if (n == MAX_FRAMES_PER_WRITE || !f->next)
			break;
	}
	p->qhead = f->next;
	f->next = NULL;
	if (!p->qhead)
		p->qtail = NULL;
	p->t->stats.frames_sent += n;
	p->t->stats.writes++;
	c->writing = 1;
	c->write_req.data = c;
	rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, c->bufs, n, on_written);
	if (rc < 0) {
		c->writing = 0;
		out_fail(c, uv_strerror(rc));
	}
}

static void on_out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct out_conn *c = h->data;
	(void)suggested;
	if (c->tls)
		*buf = uv_buf_init(c->tbuf, READ_CHUNK);
	else
		*buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void out_gone(struct out_conn *c)
{
	struct srv_peer_transport *t = c->t;
	uint64_t by = c->peer->id;

	out_fail(c, "it says this member was removed from the cluster");
	if (t->cfg.on_gone)
		t->cfg.on_gone(t->cfg.ctx, by);
}

static void out_established(struct out_conn *c);
static void on_out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_handshake_timeout(uv_timer_t *timer)
{
	struct peer *p = timer->data;

	if (p->conn && !p->conn->connected)
		out_refuse(p->conn, "TLS handshake timed out");
}

/* The handshake with what arrived; the connection is up once it is done. */
static void out_tls_progress(struct out_conn *c)
{
	int rc = srv_peer_tls_handshake(c->tls), wrc;

	if (rc < 0) {
		tls_send_now((uv_stream_t *)&c->tcp, c->tls); /* the alert */
		out_refuse(c, srv_peer_tls_error(c->tls));
		return;
	}
	wrc = tls_send((uv_stream_t *)&c->tcp, c->tls, c, on_tls_out_written, &c->writing);
	if (wrc < 0) {
		out_fail(c, errtext(wrc));
		return;
	}
	if (rc == 1) {
		uv_timer_stop(&c->peer->timer);
		out_established(c);
	}
}

/* Over TLS, the handshake, then (as on a plain connection) only the gone
 * byte or the end. */
static void out_tls_read(struct out_conn *c, ssize_t nread)
{
	uint8_t pb[64];
	int r;

	if (nread < 0) {
		if (!c->connected)
			out_refuse(c, nread == UV_EOF
			                  ? "closed by the peer during the TLS handshake "
			                    "(is its peer URL http://?)"
			                  : uv_strerror((int)nread));
		else
			out_fail(c, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
		return;
	}
	if (nread == 0 || !c->peer)
		return;
	if (srv_peer_tls_feed(c->tls, c->tbuf, (size_t)nread) != 0) {
		out_fail(c, "out of memory");
		return;
	}
	if (!c->connected) {
		out_tls_progress(c);
		if (!c->peer || !c->connected)
			return;
	}
	while ((r = srv_peer_tls_read(c->tls, pb, sizeof pb)) > 0) {
		if (pb[0] == SRV_PEER_GONE) {
			out_gone(c);
			return;
		}
	}
	if (r < 0)
		out_fail(c, srv_peer_tls_error(c->tls));
}

/* Peers never send on our outgoing connection: a read tells us it closed. */
static void on_out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct out_conn *c = s->data;

	if (c->tls) {
		out_tls_read(c, nread);
		return;
	}
	if (nread > 0 && (unsigned char)buf->base[0] == SRV_PEER_GONE && c->peer) {
		out_gone(c);
		return;
	}
	if (nread < 0)
		out_fail(c, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
}

static int queue_push_front(struct peer *p, struct frame *f)
{
	f->next = p->qhead;
	p->qhead = f;
	if (!p->qtail)
		p->qtail = f;
	p->qbytes += f->len;
	p->qframes++;
	return 0;
}

/* The connection is up (TCP, and TLS if any): the hello goes first. */
static void out_established(struct out_conn *c)
{
	struct peer *p = c->peer;
	struct srv_peer_transport *t = c->t;
	Moorraftpb__PeerHello hello = MOORRAFTPB__PEER_HELLO__INIT;
	uint8_t hb[320];
	struct frame *f;

	hello.version = SRV_PEER_PROTO_VERSION;
	hello.cluster_id = t->cfg.cluster_id;
	hello.from = t->cfg.self_id;
	hello.to = p->id;
	hello.from_url = t->self_url;
	if (moorraftpb__peer_hello__get_packed_size(&hello) > sizeof hb)
		hello.from_url = (char *)"";
	f = frame_new(hb, moorraftpb__peer_hello__pack(&hello, hb));
	if (!f) {
		out_fail(c, "out of memory");
		return;
	}
	c->connected = 1;
	p->backoff_ms = BACKOFF_MIN_MS;
	p->last_refusal[0] = '\0';
	if (!c->tls) {
		uv_tcp_nodelay(&c->tcp, 1);
		uv_read_start((uv_stream_t *)&c->tcp, on_out_alloc, on_out_read);
	}
	queue_push_front(p, f);
	LOG(t, MOOR_LOG_INFO, "connected to peer %016llx at %s%s", (unsigned long long)p->id,
	    p->url.text, c->tls ? " (TLS)" : "");
	if (t->cfg.on_peer_state)
		t->cfg.on_peer_state(t->cfg.ctx, p->id, 1);
	if (c->peer)
		peer_flush(p);
}

static void on_connected(uv_connect_t *req, int status)
{
	struct out_conn *c = req->data;
	struct peer *p = c->peer;
	struct srv_peer_transport *t = c->t;

	if (!p) { /* removed while connecting */
		if (!uv_is_closing((uv_handle_t *)&c->tcp))
			uv_close((uv_handle_t *)&c->tcp, on_out_closed);
		return;
	}
	if (status < 0) {
		LOG(t, MOOR_LOG_DEBUG, "cannot reach peer %016llx at %s: %s",
		    (unsigned long long)p->id, p->url.text, uv_strerror(status));
		out_fail(c, uv_strerror(status));
		return;
	}
	if (!p->url.tls) {
		out_established(c);
		return;
	}
	if (!t->cfg.tls) {
		out_refuse(c, "its peer URL is https and this member has no --peer-cert-file");
		return;
	}
	c->tbuf = malloc(READ_CHUNK);
	tls_reload(t);
	if (!c->tbuf || srv_peer_tls_new(t->cfg.tls, 0, p->url.host, &c->tls) != 0) {
		out_fail(c, "out of memory");
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_out_alloc, on_out_read);
	uv_timer_start(&p->timer, on_handshake_timeout, SRV_PEER_TLS_HANDSHAKE_MS, 0);
	out_tls_progress(c); /* the ClientHello */
}

/* A numeric address (no name lookup) into ss; false for a name. */
static bool numeric_addr(const char *host, unsigned port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ||
	       uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0;
}

/* Blocking; only at start-up (listeners), never on the loop once it runs. */
static int resolve(const char *host, unsigned port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = {0}, *ai;
	char ps[8];

	if (numeric_addr(host, port, ss))
		return 0;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(ps, sizeof ps, "%u", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0)
		return MOOR_EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

/* Names are looked up on libuv's thread pool: a slow or unreachable DNS
 * server (a peer's pod not yet published, say) must not stall the loop
 * that runs raft. The destination first, then the address to bind. */
static void dial_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai);

static void dial_lookup(struct out_conn *c, const char *host, unsigned port, int family)
{
	struct addrinfo hints = {0};
	char ps[8];
	int rc;

	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(ps, sizeof ps, "%u", port);
	c->gai.data = c;
	rc = uv_getaddrinfo(c->t->loop, &c->gai, dial_resolved, host, ps, &hints);
	if (rc < 0) {
		out_fail(c, uv_strerror(rc));
		return;
	}
	c->resolving = 1;
}

static void dial_connect(struct out_conn *c, const struct sockaddr_storage *src)
{
	int rc;

	if (src) {
		rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)src, 0);
		if (rc < 0) {
			out_fail(c, uv_strerror(rc));
			return;
		}
	}
	rc = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&c->dst, on_connected);
	if (rc < 0)
		out_fail(c, uv_strerror(rc));
}

/* With c->dst known: bind to the advertised address when there is one
 * (so that tests can cut links between addresses), then connect. */
static void dial_source(struct out_conn *c)
{
	const char *bind_host = c->t->cfg.bind_host;
	struct sockaddr_storage src;

	if (!bind_host) {
		dial_connect(c, NULL);
		return;
	}
	if (numeric_addr(bind_host, 0, &src)) {
		dial_connect(c, &src);
		return;
	}
	dial_lookup(c, bind_host, 0, c->dst.ss_family); /* an address to reach dst from */
}

static void dial_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
	struct out_conn *c = req->data;
	struct peer *p = c->peer;
	int source = c->dst.ss_family != 0; /* the destination was known */
	struct sockaddr_storage src;

	c->resolving = 0;
	if (status == 0)
		memcpy(source ? &src : &c->dst, ai->ai_addr, ai->ai_addrlen);
	uv_freeaddrinfo(ai);
	if (!p) { /* let go of while resolving */
		if (!uv_is_closing((uv_handle_t *)&c->tcp))
			uv_close((uv_handle_t *)&c->tcp, on_out_closed);
		return;
	}
	if (source) {
		/* the own name not resolving is no reason not to dial */
		if (status != 0)
			LOG(c->t, MOOR_LOG_DEBUG, "cannot resolve %s to bind to: %s",
			    c->t->cfg.bind_host, uv_strerror(status));
		dial_connect(c, status == 0 ? &src : NULL);
		return;
	}
	if (status != 0) {
		LOG(c->t, MOOR_LOG_DEBUG, "cannot resolve peer %016llx at %s: %s",
		    (unsigned long long)p->id, p->url.text, uv_strerror(status));
		out_fail(c, "cannot resolve host");
		return;
	}
	dial_source(c);
}

static void peer_dial(struct peer *p)
{
	struct srv_peer_transport *t = p->t;
	struct out_conn *c;

	if (t->stopping || p->conn)
		return;
	c = calloc(1, sizeof *c);
	if (!c) {
		uv_timer_start(&p->timer, on_backoff, p->backoff_ms, 0);
		return;
	}
	c->t = t;
	c->peer = p;
	uv_tcp_init(t->loop, &c->tcp);
	t->handles++;
	c->tcp.data = c;
	c->connect_req.data = c;
	p->conn = c;
	if (numeric_addr(p->url.host, p->url.port, &c->dst))
		dial_source(c);
	else {
		memset(&c->dst, 0, sizeof c->dst);
		dial_lookup(c, p->url.host, p->url.port, AF_UNSPEC);
	}
}

static void on_timer_closed(uv_handle_t *h)
{
	struct peer *p = h->data;
	struct srv_peer_transport *t = p->t;

	free(p);
	t->handles--;
	maybe_free(t);
}

static struct peer *peer_find(const struct srv_peer_transport *t, uint64_t id)
{
	for (struct peer *p = t->peers; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

static void peer_destroy(struct peer *p)
{
	queue_drop(p);
	if (p->conn)
		out_fail(p->conn, "peer removed");
	uv_timer_stop(&p->timer);
	uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

void srv_peer_set_self(struct srv_peer_transport *t, uint64_t self_id)
{
	t->cfg.self_id = self_id;
}

int srv_peer_add(struct srv_peer_transport *t, uint64_t id, const struct srv_url *url)
{
	struct peer *p;

	if (id == 0 || id == t->cfg.self_id || t->cfg.self_id == 0 || t->stopping)
		return MOOR_EINVAL;
	p = peer_find(t, id);
	if (p && strcmp(p->url.text, url->text) == 0)
		return 0; /* known, same address: keep the connection */
	srv_peer_remove(t, id);
	p = calloc(1, sizeof *p);
	if (!p)
		return MOOR_ENOMEM;
	p->t = t;
	p->id = id;
	p->url = *url;
	p->backoff_ms = BACKOFF_MIN_MS;
	uv_timer_init(t->loop, &p->timer);
	t->handles++;
	p->timer.data = p;
	p->next = t->peers;
	t->peers = p;
	peer_dial(p);
	return 0;
}

int srv_peer_remove(struct srv_peer_transport *t, uint64_t id)
{
	for (struct peer **pp = &t->peers; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct peer *p = *pp;
			*pp = p->next;
			peer_destroy(p);
			return 0;
		}
	}
	return MOOR_ENOTFOUND;
}

int srv_peer_send(struct srv_peer_transport *t, uint64_t to, const void *data, size_t len)
{
	struct peer *p = peer_find(t, to);
	struct frame *f;

	if (!p)
		return MOOR_ENOTFOUND;
	if (len > t->cfg.max_frame_bytes)
		return MOOR_ETOOLARGE;
	if (!p->conn || !p->conn->connected || p->qframes >= t->cfg.max_queue_frames ||
	    p->qbytes + len + 4 > t->cfg.max_queue_bytes) {
		t->stats.frames_dropped++;
		return MOOR_EUNAVAILABLE;
	}
	f = frame_new(data, len);
	if (!f)
		return MOOR_ENOMEM;
	if (p->qtail)
		p->qtail->next = f;
	else
		p->qhead = f;
	p->qtail = f;
	p->qbytes += f->len;
	p->qframes++;
	peer_flush(p);
	return 0;
}

size_t srv_peer_queued_bytes(const struct srv_peer_transport *t, uint64_t id)
{
	const struct peer *p = peer_find(t, id);
	return p ? p->qbytes : 0;
}

int srv_peer_connected(const struct srv_peer_transport *t, uint64_t id)
{
	const struct peer *p = peer_find(t, id);
	return p && p->conn && p->conn->connected;
}

/* ---- incoming ---- */

static void on_in_closed(uv_handle_t *h)
{
	struct in_conn *c = h->data;
	struct srv_peer_transport *t = c->t;

	free(c->rbuf);
	srv_peer_tls_free(c->tls);
	free(c->tbuf);
	free(c);
	t->handles--;
	maybe_free(t);
}

static void in_close(struct in_conn *c, const char *why)
{
	struct srv_peer_transport *t = c->t;

	if (c->closing)
		return;
	c->closing = 1;
	if (why && c->hello_ok)
		LOG(t, MOOR_LOG_WARN, "closing peer connection from %s member %016llx: %s",
		    c->remote, (unsigned long long)c->from, why);
	else if (why)
		LOG(t, MOOR_LOG_WARN, "closing peer connection from %s: %s", c->remote, why);
	if (c->prev)
		c->prev->next = c->next;
	else
		t->ins = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->tcp, on_in_closed);
}

/* Room for READ_CHUNK more bytes of frames in rbuf: 0 or MOOR_ENOMEM. */
static int in_reserve(struct in_conn *c)
{
	if (c->rcap - c->rlen < READ_CHUNK) {
		size_t cap = c->rcap ? c->rcap * 2 : 2 * READ_CHUNK;
		uint8_t *b;
		while (cap - c->rlen < READ_CHUNK)
			cap *= 2;
		b = realloc(c->rbuf, cap);
		if (!b)
			return MOOR_ENOMEM;
		c->rbuf = b;
		c->rcap = cap;
	}
	return 0;
}

static void on_in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct in_conn *c = h->data;
	(void)suggested;

	if (c->tls)
		*buf = uv_buf_init((char *)c->tbuf, READ_CHUNK);
	else if (in_reserve(c) != 0)
		*buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
	else
		*buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

/* The one byte a member sends on a connection it accepted, just before
 * closing it: written now or lost (over TLS, only once the handshake is
 * done). */
static void in_send_gone(struct in_conn *c)
{
	static char gone[1] = {(char)SRV_PEER_GONE};

	if (c->tls) {
		if (c->tls_done && srv_peer_tls_write(c->tls, gone, 1) == 0)
			tls_send_now((uv_stream_t *)&c->tcp, c->tls);
	} else {
		uv_buf_t b = uv_buf_init(gone, 1);
		uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	}
}

static int check_hello(struct in_conn *c, const uint8_t *d, size_t n, char *why, size_t wl)
{
	struct srv_peer_transport *t = c->t;
	Moorraftpb__PeerHello *h = moorraftpb__peer_hello__unpack(NULL, n, d);
	int ok = 0;

	if (!h)
		snprintf(why, wl, "first frame is not a peer hello (%zu bytes)", n);
	else if (h->version != SRV_PEER_PROTO_VERSION)
		snprintf(why, wl, "peer protocol version %u, want %u", h->version,
		         SRV_PEER_PROTO_VERSION);
	else if (t->cfg.self_id == 0 && h->cluster_id != 0 &&
	         (t->cfg.cluster_id == 0 || h->cluster_id == t->cfg.cluster_id)) {
		/* joining: the cluster that addresses us is ours; which member
		 * we are, the leader's first message says (node.c) */
		if (h->from == 0 || h->to == 0 || h->from == h->to) {
			snprintf(why, wl, "hello from invalid member id %016llx",
			         (unsigned long long)h->from);
		} else {
			ok = 1;
			if (t->cfg.cluster_id == 0) {
				t->cfg.cluster_id = h->cluster_id;
				if (t->cfg.on_cluster_id)
					t->cfg.on_cluster_id(t->cfg.ctx, h->cluster_id);
			}
		}
	} else if (h->cluster_id != t->cfg.cluster_id)
		snprintf(why, wl, "cluster id %016llx does not match ours %016llx",
		         (unsigned long long)h->cluster_id, (unsigned long long)t->cfg.cluster_id);
	else if (h->to != t->cfg.self_id)
		snprintf(why, wl, "hello addressed to member %016llx, we are %016llx",
		         (unsigned long long)h->to, (unsigned long long)t->cfg.self_id);
	else if (h->from == 0 || h->from == t->cfg.self_id)
		snprintf(why, wl, "hello from invalid member id %016llx",
		         (unsigned long long)h->from);
	else if (t->cfg.is_removed && t->cfg.is_removed(t->cfg.ctx, h->from)) {
		snprintf(why, wl, "member %016llx was removed from the cluster",
		         (unsigned long long)h->from);
		in_send_gone(c);
	} else
		ok = 1;
	if (ok) {
		c->from = h->from;
		if (t->cfg.on_hello)
			t->cfg.on_hello(t->cfg.ctx, h->from, h->from_url ? h->from_url : "");
	}
	if (h)
		moorraftpb__peer_hello__free_unpacked(h, NULL);
	if (!ok)
		t->stats.connections_refused++;
	return ok;
}

/* The whole frames in rbuf, in order: the hello, then frames for on_frame. */
static void in_parse(struct in_conn *c)
{
	struct srv_peer_transport *t = c->t;
	size_t off = 0;
	char why[160];

	while (!c->closing && c->rlen - off >= 4) {
		uint32_t len = moor_get_be32(c->rbuf + off);
		if (len > t->cfg.max_frame_bytes) {
			snprintf(why, sizeof why, "frame of %u bytes is over the %zu-byte limit",
			         len, t->cfg.max_frame_bytes);
			in_close(c, why);
			return;
		}
		if (c->rlen - off - 4 < len)
			break;
		const uint8_t *d = c->rbuf + off + 4;
		off += 4 + (size_t)len;
		if (!c->hello_ok) {
			if (!check_hello(c, d, len, why, sizeof why)) {
				in_close(c, why);
				return;
			}
			c->hello_ok = 1;
			continue;
		}
		t->stats.frames_received++;
		if (t->cfg.on_frame(t->cfg.ctx, c->from, d, len) != 0) {
			in_close(c, "undecodable frame");
			return;
		}
	}
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
}

static void on_tls_in_written(uv_write_t *req, int status)
{
	struct tls_wreq *w = req->data;
	struct in_conn *c = w->conn;

	free(w);
	if (status < 0)
		in_close(c, status == UV_ECANCELED ? NULL : uv_strerror(status));
}

/* Over TLS: the handshake, then the plaintext into rbuf, parsed as it
 * comes so that rbuf holds at most one frame and a chunk. */
static void in_tls_read(struct in_conn *c, size_t nread)
{
	int rc, wrc;

	if (srv_peer_tls_feed(c->tls, c->tbuf, nread) != 0) {
		in_close(c, "out of memory");
		return;
	}
	if (!c->tls_done) {
		rc = srv_peer_tls_handshake(c->tls);
		if (rc < 0) {
			tls_send_now((uv_stream_t *)&c->tcp, c->tls); /* the alert */
			c->t->stats.tls_failures++;
			in_close(c, srv_peer_tls_error(c->tls));
			return;
		}
		wrc = tls_send((uv_stream_t *)&c->tcp, c->tls, c, on_tls_in_written, NULL);
		if (wrc < 0) {
			in_close(c, errtext(wrc));
			return;
		}
		if (rc == 0)
			return;
		c->tls_done = 1;
	}
	for (;;) {
		if (in_reserve(c) != 0) {
			in_close(c, "out of memory");
			return;
		}
		rc = srv_peer_tls_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (rc == 0)
			break;
		if (rc < 0) {
			in_close(c, srv_peer_tls_error(c->tls));
			return;
		}
		c->rlen += (size_t)rc;
		in_parse(c);
		if (c->closing)
			return;
	}
	wrc = tls_send((uv_stream_t *)&c->tcp, c->tls, c, on_tls_in_written, NULL);
	if (wrc < 0)
		in_close(c, errtext(wrc));
}

static void on_in_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct in_conn *c = s->data;

	(void)buf;
	if (nread < 0) {
		in_close(c, nread == UV_EOF ? NULL : uv_strerror((int)nread));
		return;
	}
	if (c->tls) {
		if (nread > 0)
			in_tls_read(c, (size_t)nread);
		return;
	}
	c->rlen += (size_t)nread;
	in_parse(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct srv_peer_transport *t = server->data;
	struct in_conn *c;
	struct sockaddr_storage ss;
	int sl = sizeof ss;

	if (status < 0 || t->stopping)
		return;
	c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->t = t;
	c->accepted_ms = uv_now(t->loop);
	uv_tcp_init(t->loop, &c->tcp);
	t->handles++;
	c->tcp.data = c;
	c->next = t->ins;
	if (t->ins)
		t->ins->prev = c;
	t->ins = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		in_close(c, "accept failed");
		return;
	}
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
		uv_ip_name((struct sockaddr *)&ss, c->remote, sizeof c->remote);
	if (t->listener_tls[(uv_tcp_t *)server - t->listeners]) {
		c->tbuf = malloc(READ_CHUNK);
		tls_reload(t);
		if (!c->tbuf || srv_peer_tls_new(t->cfg.tls, 1, "", &c->tls) != 0) {
			in_close(c, "out of memory");
			return;
		}
	}
	uv_read_start((uv_stream_t *)&c->tcp, on_in_alloc, on_in_read);
}

void srv_peer_evict(struct srv_peer_transport *t, uint64_t id)
{
	struct in_conn *c = t->ins, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->hello_ok && c->from == id && !c->closing) {
			in_send_gone(c);
			in_close(c, "it was removed from the cluster");
		}
	}
}

/* Every so often: an accepted connection still without a hello (a port
 * scanner, a stalled handshake, a plain client that says nothing) is cut. */
static void on_sweep(uv_timer_t *timer)
{
	struct srv_peer_transport *t = timer->data;
	uint64_t now = uv_now(t->loop);
	struct in_conn *c = t->ins, *next;
	char why[96];

	for (; c; c = next) {
		next = c->next;
		if (c->hello_ok || c->closing || now - c->accepted_ms < t->cfg.hello_timeout_ms)
			continue;
		snprintf(why, sizeof why, "%s within %u ms",
		         c->tls && !c->tls_done ? "no TLS handshake" : "no hello",
		         t->cfg.hello_timeout_ms);
		if (c->tls && !c->tls_done)
			t->stats.tls_failures++;
		in_close(c, why);
	}
}

static void on_listener_closed(uv_handle_t *h)
{
	struct srv_peer_transport *t = h->data;
	t->handles--;
	maybe_free(t);
}

int srv_peer_transport_start(uv_loop_t *loop, const struct srv_peer_config *cfg,
                             const struct srv_url_list *listen, struct srv_peer_transport **out,
                             char *err, size_t errlen)
{
	struct srv_peer_transport *t = calloc(1, sizeof *t);
	struct sockaddr_storage ss;
	int rc = 0;

	if (!t)
		return MOOR_ENOMEM;
	t->loop = loop;
	t->cfg = *cfg;
	snprintf(t->self_url, sizeof t->self_url, "%s", cfg->self_url ? cfg->self_url : "");
	t->cfg.self_url = t->self_url;
	if (!t->cfg.max_frame_bytes)
		t->cfg.max_frame_bytes = 16u << 20;
	if (!t->cfg.max_queue_bytes)
		t->cfg.max_queue_bytes = 64u << 20;
	if (!t->cfg.max_queue_frames)
		t->cfg.max_queue_frames = 8192;
	if (!t->cfg.hello_timeout_ms)
		t->cfg.hello_timeout_ms = 10000;
	MOOR_ASSERT(t->cfg.on_frame);
	{
		unsigned every = t->cfg.hello_timeout_ms / 4;
		every = every < 10 ? 10 : every > 1000 ? 1000 : every;
		uv_timer_init(loop, &t->sweep);
		t->handles++;
		t->sweep_open = 1;
		t->sweep.data = t;
		uv_timer_start(&t->sweep, on_sweep, every, every);
	}
	for (int i = 0; i < listen->n; i++) {
		const struct srv_url *u = &listen->url[i];
		uv_tcp_t *l = &t->listeners[i];
		int sl = sizeof ss;

		if (u->tls && !cfg->tls) {
			snprintf(err, errlen,
			         "cannot listen on %s: https needs --peer-cert-file and "
			         "--peer-key-file",
			         u->text);
			rc = MOOR_EINVAL;
			goto fail;
		}
		t->listener_tls[i] = u->tls;
		if (resolve(u->host, u->port, &ss) != 0) {
			snprintf(err, errlen, "cannot resolve %s", u->text);
			rc = MOOR_EINVAL;
			goto fail;
		}
		uv_tcp_init(loop, l);
		t->handles++;
		t->nlisteners = i + 1;
		l->data = t;
		rc = uv_tcp_bind(l, (struct sockaddr *)&ss, 0);
		if (rc == 0)
			rc = uv_listen((uv_stream_t *)l, 128, on_connection);
		if (rc < 0) {
			snprintf(err, errlen, "cannot listen on %s: %s", u->text, uv_strerror(rc));
			goto fail;
		}
		uv_tcp_getsockname(l, (struct sockaddr *)&ss, &sl);
		t->ports[i] =
		    ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                   : ((struct sockaddr_in *)&ss)->sin_port);
	}
	*out = t;
	return 0;
fail:
	srv_peer_transport_stop(t);
	return rc;
}

unsigned srv_peer_transport_port(const struct srv_peer_transport *t, int i)
{
	return i < t->nlisteners ? t->ports[i] : 0;
}

void srv_peer_transport_stats(const struct srv_peer_transport *t, struct srv_peer_stats *out)
{
	*out = t->stats;
}

void srv_peer_transport_stop(struct srv_peer_transport *t)
{
	t->stopping = 1;
	while (t->peers) {
		struct peer *p = t->peers;
		t->peers = p->next;
		peer_destroy(p);
	}
	while (t->ins)
		in_close(t->ins, NULL);
	for (int i = 0; i < t->nlisteners; i++)
		uv_close((uv_handle_t *)&t->listeners[i], on_listener_closed);
	t->nlisteners = 0;
	if (t->sweep_open) {
		t->sweep_open = 0;
		uv_timer_stop(&t->sweep);
		uv_close((uv_handle_t *)&t->sweep, on_listener_closed);
	}
	maybe_free(t);
}
