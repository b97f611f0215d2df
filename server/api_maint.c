/*
 * Maintenance: /v3/maintenance/snapshot streams a consistent copy of the
 * store for backups: a RocksDB checkpoint packed as a snapshot archive
 * (server/snapshot.h), sent as SnapshotResponse messages of at most 1 MiB
 * ({"result":...} lines for JSON, 4-byte-length frames for protobuf), each
 * with remaining_bytes; the last message's blob is the SHA-256 of the
 * archive, as etcd ends its stream with a digest.
 */
#include "server/api_int.h"

#include "common/error.h"
#include "server/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SNAP_MSG_BYTES (1u << 20)

struct snapcall {
	struct srv_job job;
	struct srv_api *api;
	struct srv_stream *out;
	int proto, closed, in_job;
	char dir[1100], path[1100];
	int fd;
	uint64_t total, sent;
	uint32_t crc;
	unsigned char sha[SHA256_DIGEST_LENGTH];
	int rc;
	char err[1400];
};

static void snapcall_free(struct snapcall *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->path[0])
		unlink(s->path);
	free(s);
}

static void make_run(struct srv_job *j)
{
	struct snapcall *s = (struct snapcall *)j;
	uint64_t applied;
	unsigned char *buf;
	EVP_MD_CTX *md;

	srv_snap_rmdir(s->dir);
	s->rc = kv_snapshot_create(srv_node_kv(s->api->node), s->dir, &applied);
	if (s->rc) {
		snprintf(s->err, sizeof s->err, "checkpoint failed: %s", moor_strerror(s->rc));
		return;
	}
	s->rc = srv_snap_pack(s->dir, s->path, &s->total, &s->crc, s->err, sizeof s->err);
	srv_snap_rmdir(s->dir);
	if (s->rc)
		return;
	s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		s->rc = -errno;
		snprintf(s->err, sizeof s->err, "open %s: %s", s->path, strerror(errno));
		return;
	}
	/* the digest that ends the stream */
	buf = malloc(1 << 16);
	md = EVP_MD_CTX_new();
	if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		s->rc = MOOR_ENOMEM;
	} else {
		ssize_t r;
		while ((r = read(s->fd, buf, 1 << 16)) > 0)
			EVP_DigestUpdate(md, buf, (size_t)r);
		EVP_DigestFinal_ex(md, s->sha, NULL);
	}
	EVP_MD_CTX_free(md);
	free(buf);
}

static int write_msg(struct snapcall *s, const ProtobufCMessage *m)
{
	struct moor_buf b;
	int rc;

	moor_buf_init(&b, NULL);
	rc = srv_api_stream_encode(m, s->proto, &b);
	if (rc == 0)
		rc = srv_stream_write(s->out, b.data, b.len);
	moor_buf_free(&b);
	return rc;
}

static void header(struct snapcall *s, Etcdserverpb__ResponseHeader *h)
{
	struct srv_node_info info;

	srv_node_info(s->api->node, &info);
	h->cluster_id = info.cluster_id;
	h->member_id = info.id;
	h->revision = info.revision;
	h->raft_term = info.term;
}

/* Sends while the connection keeps up; on_drained resumes. */
static void pump(struct snapcall *s)
{
	unsigned char *buf;

	if (s->closed || s->fd < 0)
		return;
	buf = malloc(SNAP_MSG_BYTES);
	if (!buf)
		return;
	while (s->sent < s->total && srv_stream_buffered(s->out) < SRV_STREAM_HIGH_WATER) {
		Etcdserverpb__SnapshotResponse m = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
		Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		size_t k = s->total - s->sent < SNAP_MSG_BYTES ? (size_t)(s->total - s->sent)
		                                               : SNAP_MSG_BYTES;
		if (pread(s->fd, buf, k, (off_t)s->sent) != (ssize_t)k) {
			srv_stream_end(s->out);
			break;
		}
		s->sent += k;
		header(s, &h);
		m.header = &h;
		m.remaining_bytes = s->total - s->sent + SHA256_DIGEST_LENGTH;
		m.blob.data = buf;
		m.blob.len = k;
		m.version = (char *)MOOR_ETCD_VERSION;
		if (write_msg(s, &m.base) != 0)
			break;
	}
	if (s->sent == s->total && s->fd >= 0) {
		Etcdserverpb__SnapshotResponse m = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
		Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		header(s, &h);
		m.header = &h;
		m.remaining_bytes = 0;
		m.blob.data = s->sha;
		m.blob.len = sizeof s->sha;
		m.version = (char *)MOOR_ETCD_VERSION;
		write_msg(s, &m.base);
		close(s->fd);
		s->fd = -1;
		srv_stream_end(s->out);
	}
	free(buf);
}

static void make_done(struct srv_job *j)
{
	struct snapcall *s = (struct snapcall *)j;

	s->in_job = 0;
	if (s->closed) {
		snapcall_free(s);
		return;
	}
	if (s->rc) {
		struct srv_gw_error e;
		struct moor_buf b;
		srv_gw_error_from_code(s->rc, &e);
		snprintf(e.message, sizeof e.message, "snapshot: %.300s", s->err);
		moor_buf_init(&b, NULL);
		if (srv_gw_write_stream_error(&b, &e) == 0)
			srv_stream_write(s->out, b.data, b.len);
		moor_buf_free(&b);
		srv_stream_end(s->out);
		return;
	}
	pump(s);
}

static void on_closed(void *ctx)
{
	struct snapcall *s = ctx;

	s->closed = 1;
	if (!s->in_job)
		snapcall_free(s);
}

static void on_drained(void *ctx)
{
	pump(ctx);
}

void api_snapshot(struct call *c)
{
	struct srv_stream_callbacks cb = {on_closed, on_drained, NULL};
	struct snapcall *s = calloc(1, sizeof *s);
	static unsigned seq;

	if (!s) {
		reply_error(c, MOOR_ENOMEM);
		call_free(c);
		return;
	}
	s->api = c->api;
	s->proto = c->proto;
	s->fd = -1;
	cb.ctx = s;
	seq++;
	snprintf(s->dir, sizeof s->dir, "%s/snap/backup-%d-%u.ckpt", c->api->cfg->data_dir,
	         (int)getpid(), seq);
	snprintf(s->path, sizeof s->path, "%s/snap/backup-%d-%u.arc", c->api->cfg->data_dir,
	         (int)getpid(), seq);
	if (srv_req_stream(c->req, 200, c->proto ? "application/x-protobuf" : "application/json",
	                   &cb, &s->out) != 0) {
		free(s);
		reply_error(c, MOOR_ENOMEM);
		call_free(c);
		return;
	}
	call_free(c);
	s->in_job = 1;
	s->job.run = make_run;
	s->job.done = make_done;
	srv_node_submit_snapshot_job(s->api->node, &s->job);
}

/* ---- alarms ---- */

static void reply_alarms(struct call *c)
{
	Etcdserverpb__AlarmResponse r = ETCDSERVERPB__ALARM_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Etcdserverpb__AlarmMember am[16], *ap[16];
	uint64_t members[16];
	int types[16];
	int n = srv_node_alarms(c->api->node, members, types, 16);

	fill_header(c, &h);
	r.header = &h;
	for (int i = 0; i < n; i++) {
		etcdserverpb__alarm_member__init(&am[i]);
		am[i].memberid = members[i];
		am[i].alarm = (Etcdserverpb__AlarmType)types[i];
		ap[i] = &am[i];
	}
	r.n_alarms = (size_t)n;
	r.alarms = ap;
	reply_msg(c, &r.base);
}

static void on_alarm_applied(void *ctx, int rc, void *resp, int64_t aux)
{
	struct call *c = ctx;

	(void)aux;
	kv_response_free(resp);
	if (rc)
		reply_error(c, rc);
	else
		reply_alarms(c);
	call_free(c);
}

void api_alarm(struct call *c)
{
	Etcdserverpb__AlarmRequest *q = (Etcdserverpb__AlarmRequest *)c->msg;
	Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
	int rc;

	if (q->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET) {
		reply_alarms(c);
		call_free(c);
		return;
	}
	ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_ALARM;
	ir.alarm = q;
	/* deferred first: the answer may come before the call returns */
	srv_req_defer(c->req);
	rc = srv_node_propose(c->api->node, &ir, on_alarm_applied, c);
	if (rc) {
		reply_error(c, rc);
		call_free(c);
		return;
	}
}

/* ---- defragment: give the space compaction freed back to the disk ---- */

struct defragcall {
	struct srv_job job;
	struct call *c;
	int rc;
};

static void defrag_run(struct srv_job *j)
{
	struct defragcall *d = (struct defragcall *)j;
	d->rc = kv_defragment(srv_node_kv(d->c->api->node));
}

static void defrag_done(struct srv_job *j)
{
	struct defragcall *d = (struct defragcall *)j;
	struct call *c = d->c;

	if (d->rc) {
		reply_error(c, d->rc);
	} else {
		Etcdserverpb__DefragmentResponse r = ETCDSERVERPB__DEFRAGMENT_RESPONSE__INIT;
		Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		fill_header(c, &h);
		r.header = &h;
		reply_msg(c, &r.base);
	}
	call_free(c);
	free(d);
}

/* Member-local, as etcd's: runs on the compaction thread, reads and writes
 * go on meanwhile (RocksDB rewrites its files in the background). */
void api_defragment(struct call *c)
{
	struct defragcall *d = calloc(1, sizeof *d);

	if (!d) {
		reply_error(c, MOOR_ENOMEM);
		call_free(c);
		return;
	}
	d->c = c;
	d->job.run = defrag_run;
	d->job.done = defrag_done;
	srv_req_defer(c->req);
	srv_node_submit_compact_job(c->api->node, &d->job);
}
