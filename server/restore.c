/*
 * moord --restore-snapshot FILE: builds a new member's data directory from a
 * backup (what `moorctl snapshot save` wrote: the snapshot archive followed
 * by its SHA-256), the way back from a lost cluster. The store is restored
 * from the archive, its raft position reset so the new cluster's log starts
 * over, its alarms cleared; the member then bootstraps as usual from the
 * --initial-cluster given (every member of the new cluster is restored from
 * the same file, with --initial-cluster-state new).
 */
#include "server/server.h"

#include "common/error.h"
#include "kv/kv.h"
#include "server/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIGEST 32

/* Copies FILE without its last 32 bytes to `out`, checking they are the
 * SHA-256 of the rest. */
static int strip_digest(const char *file, const char *out, char *err, size_t errlen)
{
	int in = open(file, O_RDONLY | O_CLOEXEC), o = -1, rc = 0;
	unsigned char *buf = malloc(1 << 16), want[DIGEST], got[DIGEST];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct stat st;
	uint64_t left;

	if (in < 0 || fstat(in, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno));
		goto done;
	}
	if (!buf || !md) {
		rc = MOOR_ENOMEM;
		goto done;
	}
	if ((uint64_t)st.st_size <= DIGEST + strlen(SRV_SNAP_MAGIC)) {
		rc = MOOR_ECORRUPT;
		snprintf(err, errlen, "%s is too short to be a moor snapshot", file);
		goto done;
	}
	o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", out, strerror(errno));
		goto done;
	}
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	left = (uint64_t)st.st_size - DIGEST;
	while (left && rc == 0) {
		size_t k = left < (1u << 16) ? (size_t)left : (1u << 16);
		if (read(in, buf, k) != (ssize_t)k || write(o, buf, k) != (ssize_t)k)
			rc = -EIO;
		EVP_DigestUpdate(md, buf, k);
		left -= k;
	}
	if (rc == 0 && read(in, want, DIGEST) != DIGEST)
		rc = -EIO;
	EVP_DigestFinal_ex(md, got, NULL);
	if (rc == 0 && memcmp(want, got, DIGEST) != 0) {
		rc = MOOR_ECORRUPT;
		snprintf(err, errlen, "%s fails its SHA-256 check: not a moor snapshot, or damaged",
		         file);
	} else if (rc) {
		snprintf(err, errlen, "cannot copy %s: %s", file, moor_strerror(rc));
	}
	if (rc == 0 && fsync(o) != 0)
		rc = -errno;
done:
	if (in >= 0)
		close(in);
	if (o >= 0)
		close(o);
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

static int dir_empty_or_absent(const char *dir, const char *sub)
{
	char p[1100];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s", dir, sub);
	return stat(p, &st) != 0;
}

int srv_restore(const struct srv_config *cfg, const struct moor_logger *log, char *err,
                size_t errlen)
{
	char snap[1100], arc[1200], ckpt[1200], kvdir[1100];
	struct kv_config kc = {0};
	struct kv *kv = NULL;
	uint64_t durable;
	int rc;

	if (!dir_empty_or_absent(cfg->data_dir, "wal") ||
	    !dir_empty_or_absent(cfg->data_dir, "kv") ||
	    !dir_empty_or_absent(cfg->data_dir, "identity")) {
		snprintf(err, errlen,
		         "data directory %s already holds a member: restore into a new directory",
		         cfg->data_dir);
		return MOOR_EEXIST;
	}
	snprintf(snap, sizeof snap, "%s/snap", cfg->data_dir);
	snprintf(kvdir, sizeof kvdir, "%s/kv", cfg->data_dir);
	snprintf(arc, sizeof arc, "%s/restore.arc", snap);
	snprintf(ckpt, sizeof ckpt, "%s/restore.ckpt", snap);
	if ((mkdir(snap, 0700) != 0 && errno != EEXIST) ||
	    (mkdir(kvdir, 0700) != 0 && errno != EEXIST)) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", snap, strerror(errno));
		return rc;
	}
	rc = strip_digest(cfg->restore_snapshot, arc, err, errlen);
	if (rc == 0)
		rc = srv_snap_unpack(arc, ckpt, err, errlen);
	unlink(arc);
	if (rc)
		goto out;
	kc.path = kvdir;
	kc.logger = log;
	rc = kv_open(&kc, &kv);
	if (rc == 0)
		rc = kv_snapshot_restore(kv, ckpt);
	if (rc) {
		snprintf(err, errlen, "cannot restore the store: %s%s%s", moor_strerror(rc),
		         kv ? " " : "", kv ? kv_errmsg(kv) : "");
		goto out;
	}
	/* the old cluster's alarms do not carry over; then the log starts over */
	rc = kv_rebase(kv, 0, 0);
	if (rc == 0)
		rc = kv_batch_begin(kv);
	if (rc == 0) {
		rc = kv_batch_meta_put(kv, 1, "alarms", "", 0);
		if (rc == 0)
			rc = kv_batch_commit(kv, 1, 1);
		else
			kv_batch_abort(kv);
	}
	if (rc == 0)
		rc = kv_rebase(kv, 0, 0);
	if (rc == 0)
		rc = kv_flush(kv, &durable);
	if (rc) {
		snprintf(err, errlen, "cannot prepare the restored store: %s", moor_strerror(rc));
		goto out;
	}
	{
		struct kv_status st;
		kv_status(kv, &st);
		moor_log(log, MOOR_LOG_INFO, "restore",
		         "restored %s into %s: revision %lld; start the member with "
		         "--initial-cluster-state new",
		         cfg->restore_snapshot, cfg->data_dir, (long long)st.revision);
	}
out:
	kv_close(kv);
	srv_snap_rmdir(ckpt);
	return rc;
}
