/* SHA-256 based ids (see ids.h); inputs are sorted so order never matters. */
#include "server/ids.h"

#include "common/assert.h"
#include "common/buf.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t digest_id(struct moor_buf *b)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t id;

	SHA256(b->data, b->len, md);
	moor_buf_free(b);
	id = moor_get_be64(md);
	return id ? id : 1;
}

static uint64_t member_id(const struct srv_url_list *peer_urls, const char *token,
                          const uint64_t *salt)
{
	const char *urls[SRV_MAX_URLS];
	struct moor_buf b;

	moor_buf_init(&b, NULL);
	for (int i = 0; i < peer_urls->n; i++)
		urls[i] = peer_urls->url[i].text;
	qsort(urls, (size_t)peer_urls->n, sizeof urls[0], cmp_str);
	for (int i = 0; i < peer_urls->n; i++)
		MOOR_ASSERT(moor_buf_append(&b, urls[i], strlen(urls[i]) + 1) == 0);
	MOOR_ASSERT(moor_buf_append(&b, token, strlen(token)) == 0);
	if (salt)
		MOOR_ASSERT(moor_buf_append_be64(&b, *salt) == 0);
	return digest_id(&b);
}

uint64_t srv_member_id(const struct srv_url_list *peer_urls, const char *token)
{
	return member_id(peer_urls, token, NULL);
}

uint64_t srv_member_id_salted(const struct srv_url_list *peer_urls, const char *token,
                              uint64_t salt)
{
	return member_id(peer_urls, token, &salt);
}

uint64_t srv_cluster_id(const uint64_t *member_ids, int n, const char *token)
{
	uint64_t ids[SRV_MAX_MEMBERS];
	struct moor_buf b;

	moor_buf_init(&b, NULL);
	memcpy(ids, member_ids, sizeof ids[0] * (size_t)n);
	qsort(ids, (size_t)n, sizeof ids[0], cmp_u64);
	for (int i = 0; i < n; i++)
		MOOR_ASSERT(moor_buf_append_be64(&b, ids[i]) == 0);
	MOOR_ASSERT(moor_buf_append(&b, token, strlen(token)) == 0);
	return digest_id(&b);
}
