/*
 * The kv handle: opening and closing RocksDB, its options, the data
 * directory, the committed meta state, flushes and meta records. Views are
 * in view.c, snapshots in snapshot.c.
 *
 * Directory layout: <path>/CURRENT_DB names the live RocksDB directory
 * (<path>/db-<n>). Restoring a snapshot moves the checkpoint in as
 * db-<n+1> and then renames a new CURRENT_DB over the old one: the rename is
 * the commit point, so a crash leaves either the old or the new state, and
 * stale db-* directories are removed at the next open.
 *
 * RocksDB's WAL is off for every write: the raft WAL is the log. A single
 * column family holds every table (one-byte prefixes), so a write batch lands
 * in one memtable and a flush can never persist part of it; no atomic-flush
 * coordination between column families is needed.
 */
#include "kv/kv_int.h"

#include "common/error.h"
#include "common/buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KV_META_VERSION "version"
#define KV_META_APPLIED "applied"
#define KV_META_REV "rev"
#define KV_META_COMPACT "compact"

int kv_fail(struct kv *kv, int code, const char *fmt, ...)
{
	va_list ap;

	if (!pthread_equal(pthread_self(), kv->owner))
		return code;
	va_start(ap, fmt);
	vsnprintf(kv->errmsg, sizeof kv->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

const char *kv_errmsg(const struct kv *kv)
{
	return kv->errmsg;
}

int kv_rocks_err(struct kv *kv, char *err, const char *what)
{
	int code = MOOR_EUNAVAILABLE;

	if (strncmp(err, "Corruption", 10) == 0)
		code = MOOR_ECORRUPT;
	else if (strncmp(err, "IO error", 8) == 0)
		code = -EIO;
	moor_log(kv->log, MOOR_LOG_ERROR, "kv", "%s: %s path=%s", what, err, kv->db_path);
	kv_fail(kv, code, "%s: %s", what, err);
	rocksdb_free(err);
	return code;
}

char *kv_path_join(const struct moor_alloc *a, const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = moor_malloc(a, n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int fsync_path(const char *p, bool dir)
{
	int fd = open(p, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p) != 0 ? -1 : 0;
}

int kv_rm_tree(const char *p)
{
	return nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 ? -errno : 0;
}

/* Read CURRENT_DB: "db-<n>\n". */
static int read_current(struct kv *kv, unsigned *gen)
{
	char *p = kv_path_join(kv->alloc, kv->path, "CURRENT_DB");
	char buf[64] = {0};
	FILE *f;
	int rc = 0;

	if (!p)
		return MOOR_ENOMEM;
	f = fopen(p, "re");
	if (!f) {
		rc = errno == ENOENT ? MOOR_ENOTFOUND : -errno;
	} else {
		if (!fgets(buf, sizeof buf, f) || sscanf(buf, "db-%u", gen) != 1 || *gen == 0)
			rc = kv_fail(kv, MOOR_ECORRUPT, "kv: bad %s", p);
		fclose(f);
	}
	moor_free(kv->alloc, p);
	return rc;
}

int kv_write_current(struct kv *kv, unsigned gen)
{
	char *tmp = kv_path_join(kv->alloc, kv->path, "CURRENT_DB.tmp");
	char *cur = kv_path_join(kv->alloc, kv->path, "CURRENT_DB");
	char line[32];
	int rc = 0, fd = -1;

	if (!tmp || !cur) {
		rc = MOOR_ENOMEM;
		goto out;
	}
	snprintf(line, sizeof line, "db-%u\n", gen);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line) || fsync(fd) != 0) {
		rc = -errno;
		goto out;
	}
	if (rename(tmp, cur) != 0) {
		rc = -errno;
		goto out;
	}
	rc = fsync_path(kv->path, true);
out:
	if (fd >= 0)
		close(fd);
	moor_free(kv->alloc, tmp);
	moor_free(kv->alloc, cur);
	return rc ? kv_fail(kv, rc, "kv: cannot write CURRENT_DB in %s: %s", kv->path,
	                    moor_strerror(rc))
	          : 0;
}

/* Remove db-* directories other than the live one (an interrupted restore). */
static void remove_stale(struct kv *kv)
{
	DIR *d = opendir(kv->path);
	struct dirent *e;
	unsigned g;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (sscanf(e->d_name, "db-%u", &g) != 1 || g == kv->db_gen)
			continue;
		char *p = kv_path_join(kv->alloc, kv->path, e->d_name);

		if (p) {
			moor_log(kv->log, MOOR_LOG_WARN, "kv", "removing stale store %s", p);
			kv_rm_tree(p);
			moor_free(kv->alloc, p);
		}
	}
	closedir(d);
}

static int get_meta_u64(struct kv *kv, const char *name, uint64_t *v, size_t n)
{
	struct kv_kbuf k;
	char *err = NULL, *val;
	size_t len;
	int rc = 0;

	kv_kbuf_init(&k);
	if (kv_key_meta(kv->alloc, &k, name) != 0)
		return MOOR_ENOMEM;
	val = rocksdb_get(kv->db, kv->ro, (char *)k.p, k.len, &len, &err);
	kv_kbuf_free(kv->alloc, &k);
	if (err)
		return kv_rocks_err(kv, err, "kv: reading meta");
	if (!val)
		return MOOR_ENOTFOUND;
	if (len != 8 * n)
		rc = kv_fail(kv, MOOR_ECORRUPT, "kv: meta %s has %zu bytes", name, len);
	for (size_t i = 0; rc == 0 && i < n; i++)
		v[i] = moor_get_be64((unsigned char *)val + 8 * i);
	rocksdb_free(val);
	return rc;
}

static int load_meta(struct kv *kv)
{
	uint64_t v[2];
	int rc = get_meta_u64(kv, KV_META_VERSION, v, 1);

	if (rc == MOOR_ENOTFOUND) {
		/* A new store: layout version, revision 1. */
		unsigned char b[8];
		struct kv_kbuf k;
		char *err = NULL;

		kv_kbuf_init(&k);
		if (kv_key_meta(kv->alloc, &k, KV_META_VERSION) != 0)
			return MOOR_ENOMEM;
		moor_put_be64(b, KV_LAYOUT_VERSION);
		rocksdb_put(kv->db, kv->wo, (char *)k.p, k.len, (char *)b, 8, &err);
		kv_kbuf_free(kv->alloc, &k);
		if (err)
			return kv_rocks_err(kv, err, "kv: initializing");
		kv->applied_index = kv->applied_term = 0;
		kv->rev = 1;
		kv->compact_rev = 0;
		return 0;
	}
	if (rc)
		return rc;
	if (v[0] != KV_LAYOUT_VERSION)
		return kv_fail(kv, MOOR_ECORRUPT, "kv: layout version %llu, expected %d in %s",
		               (unsigned long long)v[0], KV_LAYOUT_VERSION, kv->db_path);
	rc = get_meta_u64(kv, KV_META_APPLIED, v, 2);
	if (rc == MOOR_ENOTFOUND)
		v[0] = v[1] = 0;
	else if (rc)
		return rc;
	kv->applied_index = v[0];
	kv->applied_term = v[1];
	rc = get_meta_u64(kv, KV_META_REV, v, 1);
	if (rc == MOOR_ENOTFOUND)
		v[0] = 1;
	else if (rc)
		return rc;
	kv->rev = (int64_t)v[0];
	rc = get_meta_u64(kv, KV_META_COMPACT, v, 1);
	if (rc == MOOR_ENOTFOUND)
		v[0] = 0;
	else if (rc)
		return rc;
	kv->compact_rev = (int64_t)v[0];
	if (kv->rev < 1 || kv->compact_rev < 0 || kv->compact_rev > kv->rev)
		return kv_fail(kv, MOOR_ECORRUPT, "kv: bad meta revision=%lld compact=%lld",
		               (long long)kv->rev, (long long)kv->compact_rev);
	return 0;
}

static void db_close(struct kv *kv)
{
	if (kv->db)
		rocksdb_close(kv->db);
	kv->db = NULL;
	moor_free(kv->alloc, kv->db_path);
	kv->db_path = NULL;
}

/* `fresh`: a new store, whose database may be created; otherwise a missing
 * database is corruption (CURRENT_DB names it), never silently empty. */
int kv_db_open(struct kv *kv, bool fresh)
{
	char name[32], *err = NULL;
	int rc;

	snprintf(name, sizeof name, "db-%u", kv->db_gen);
	kv->db_path = kv_path_join(kv->alloc, kv->path, name);
	if (!kv->db_path)
		return MOOR_ENOMEM;
	if (!fresh && access(kv->db_path, F_OK) != 0)
		return kv_fail(kv, MOOR_ECORRUPT, "kv: CURRENT_DB names %s, which is missing",
		               kv->db_path);
	rocksdb_options_set_create_if_missing(kv->opts, fresh);
	kv->db = rocksdb_open(kv->opts, kv->db_path, &err);
	if (err)
		return kv_rocks_err(kv, err, "kv: opening RocksDB");
	rc = load_meta(kv);
	if (rc) {
		db_close(kv);
		return rc;
	}
	kv->gc_cursor.len = 0;
	return 0;
}

static int make_options(struct kv *kv)
{
	kv->opts = rocksdb_options_create();
	kv->topts = rocksdb_block_based_options_create();
	kv->cache = rocksdb_cache_create_lru(kv->block_cache_bytes);
	kv->ro = rocksdb_readoptions_create();
	kv->wo = rocksdb_writeoptions_create();
	kv->fo = rocksdb_flushoptions_create();
	if (!kv->opts || !kv->topts || !kv->cache || !kv->ro || !kv->wo || !kv->fo)
		return MOOR_ENOMEM;
	rocksdb_block_based_options_set_block_cache(kv->topts, kv->cache);
	rocksdb_block_based_options_set_filter_policy(kv->topts,
	                                              rocksdb_filterpolicy_create_bloom(10));
	/* Point gets (current reads, history records) find their entry in a
	 * data block by hash instead of a binary search. */
	rocksdb_block_based_options_set_data_block_index_type(
	    kv->topts, rocksdb_block_based_table_data_block_index_type_binary_search_and_hash);
	rocksdb_block_based_options_set_data_block_hash_ratio(kv->topts, 0.75);
	rocksdb_options_set_block_based_table_factory(kv->opts, kv->topts);
	{
		/* Recent data (L0, L1) uncompressed: flushes cost less CPU and the
		 * hot part of the key space needs no decompression; older levels
		 * LZ4 for space. */
		static const int levels[7] = {rocksdb_no_compression,  rocksdb_no_compression,
		                              rocksdb_lz4_compression, rocksdb_lz4_compression,
		                              rocksdb_lz4_compression, rocksdb_lz4_compression,
		                              rocksdb_lz4_compression};

		rocksdb_options_set_compression_per_level(kv->opts, levels, 7);
	}
	rocksdb_options_set_write_buffer_size(kv->opts, kv->write_buffer_bytes);
	rocksdb_options_set_max_background_jobs(kv->opts, 2);
	/* Puts look up their key first; most new keys are in no memtable. */
	rocksdb_options_set_memtable_prefix_bloom_size_ratio(kv->opts, 0.05);
	rocksdb_options_set_memtable_whole_key_filtering(kv->opts, 1);
	rocksdb_options_set_info_log_level(kv->opts, 2 /* WARN */);
	rocksdb_writeoptions_disable_WAL(kv->wo, 1);
	rocksdb_flushoptions_set_wait(kv->fo, 1);
	return 0;
}

static void free_options(struct kv *kv)
{
	if (kv->fo)
		rocksdb_flushoptions_destroy(kv->fo);
	if (kv->wo)
		rocksdb_writeoptions_destroy(kv->wo);
	if (kv->ro)
		rocksdb_readoptions_destroy(kv->ro);
	if (kv->opts)
		rocksdb_options_destroy(kv->opts);
	if (kv->topts)
		rocksdb_block_based_options_destroy(kv->topts);
	if (kv->cache)
		rocksdb_cache_destroy(kv->cache);
}

int kv_open(const struct kv_config *cfg, struct kv **out)
{
	const struct moor_alloc *a = moor_alloc_or_default(cfg->alloc);
	struct kv *kv;
	int rc;

	*out = NULL;
	if (!cfg->path || !cfg->path[0])
		return MOOR_EINVAL;
	kv = moor_calloc(a, 1, sizeof *kv);
	if (!kv)
		return MOOR_ENOMEM;
	kv->alloc = a;
	kv->owner = pthread_self();
	kv->log = cfg->logger;
	kv->on_events = cfg->on_events;
	kv->events_ctx = cfg->events_ctx;
	kv->max_key = cfg->max_key_bytes ? cfg->max_key_bytes : KV_MAX_KEY_BYTES_DEFAULT;
	kv->max_value = cfg->max_value_bytes ? cfg->max_value_bytes : KV_MAX_VALUE_BYTES_DEFAULT;
	kv->max_txn_ops = cfg->max_txn_ops > 0 ? cfg->max_txn_ops : KV_MAX_TXN_OPS_DEFAULT;
	kv->write_buffer_bytes = cfg->write_buffer_bytes ? cfg->write_buffer_bytes : 64u << 20;
	kv->block_cache_bytes = cfg->block_cache_bytes ? cfg->block_cache_bytes : 128u << 20;
	kv_kbuf_init(&kv->gc_cursor);
	pthread_mutex_init(&kv->mu, NULL);
	kv->path = moor_memdup(a, cfg->path, strlen(cfg->path));
	if (!kv->path) {
		rc = MOOR_ENOMEM;
		goto err;
	}
	if (mkdir(kv->path, 0755) != 0 && errno != EEXIST) {
		rc = kv_fail(kv, -errno, "kv: cannot create %s", kv->path);
		goto err;
	}
	rc = make_options(kv);
	if (rc)
		goto err;
	rc = read_current(kv, &kv->db_gen);
	if (rc == MOOR_ENOTFOUND) {
		/* A new store: the database first, then the pointer to it, so a
		 * crash in between leaves a store that is still new. */
		kv->db_gen = 1;
		remove_stale(kv);
		rc = kv_db_open(kv, true);
		if (rc == 0)
			rc = kv_write_current(kv, 1);
	} else if (rc == 0) {
		remove_stale(kv);
		rc = kv_db_open(kv, false);
	}
	if (rc)
		goto err;
	kv->wb = rocksdb_writebatch_wi_create(0, 1);
	for (int i = 0; i < 3; i++)
		kv->pb[i] = rocksdb_writebatch_create();
	if (!kv->wb || !kv->pb[0] || !kv->pb[1] || !kv->pb[2]) {
		rc = MOOR_ENOMEM;
		goto err;
	}
	moor_log(kv->log, MOOR_LOG_INFO, "kv",
	         "opened path=%s index=%llu term=%llu revision=%lld compact=%lld", kv->db_path,
	         (unsigned long long)kv->applied_index, (unsigned long long)kv->applied_term,
	         (long long)kv->rev, (long long)kv->compact_rev);
	*out = kv;
	return 0;
err:
	moor_log(kv->log, MOOR_LOG_ERROR, "kv", "open failed path=%s: %s", cfg->path,
	         kv->errmsg[0] ? kv->errmsg : moor_strerror(rc));
	kv_close(kv);
	return rc;
}

void kv_close(struct kv *kv)
{
	if (!kv)
		return;
	kv_batch_abort(kv);
	db_close(kv);
	if (kv->wb)
		rocksdb_writebatch_wi_destroy(kv->wb);
	for (int i = 0; i < 3; i++)
		if (kv->pb[i])
			rocksdb_writebatch_destroy(kv->pb[i]);
	free_options(kv);
	kv_kbuf_free(kv->alloc, &kv->gc_cursor);
	pthread_mutex_destroy(&kv->mu);
	moor_free(kv->alloc, kv->path);
	moor_free(kv->alloc, kv);
}

void kv_status(struct kv *kv, struct kv_status *out)
{
	pthread_mutex_lock(&kv->mu);
	out->applied_index = kv->applied_index;
	out->applied_term = kv->applied_term;
	out->revision = kv->rev;
	out->compact_revision = kv->compact_rev;
	out->compact_pending = kv->gc_done_rev < kv->compact_rev;
	pthread_mutex_unlock(&kv->mu);
}

int kv_flush(struct kv *kv, uint64_t *durable_index)
{
	char *err = NULL;

	rocksdb_flush(kv->db, kv->fo, &err);
	if (err)
		return kv_rocks_err(kv, err, "kv: flush");
	if (durable_index) {
		pthread_mutex_lock(&kv->mu);
		*durable_index = kv->applied_index;
		pthread_mutex_unlock(&kv->mu);
	}
	return 0;
}

/* ---- meta ---------------------------------------------------------------- */

int kv_meta_get(struct kv *kv, const char *name, void **val, size_t *len)
{
	struct kv_kbuf k;
	char *err = NULL, *v;
	int rc;

	if (strlen(name) == 0 || strlen(name) > KV_MAX_META_NAME_BYTES)
		return MOOR_EINVAL;
	kv_kbuf_init(&k);
	rc = kv_kbuf_add(kv->alloc, &k, "mu/", 3);
	if (rc == 0)
		rc = kv_kbuf_add(kv->alloc, &k, name, strlen(name));
	if (rc)
		return rc;
	v = rocksdb_get(kv->db, kv->ro, (char *)k.p, k.len, len, &err);
	kv_kbuf_free(kv->alloc, &k);
	if (err)
		return kv_rocks_err(kv, err, "kv: meta get");
	if (!v)
		return MOOR_ENOTFOUND;
	*val = moor_memdup(kv->alloc, v, *len);
	rocksdb_free(v);
	return *val ? 0 : MOOR_ENOMEM;
}
