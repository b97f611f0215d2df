/*
 * Fuzz target for kv's on-disk encodings (kv/codec.c): record decoding must
 * reject anything malformed without crashing, and a decoded record must
 * re-encode to the same bytes; index keys must parse or be refused, and
 * escaping any user key must round-trip and keep (key, revision) order.
 */
#include "kv/kv_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct moor_alloc *a = moor_alloc_default();
	struct kv_kbuf b, k1, k2, key;
	struct kv_rec rec;
	struct kv_rev r;
	size_t half = size / 2;

	kv_kbuf_init(&b);
	kv_kbuf_init(&k1);
	kv_kbuf_init(&k2);
	kv_kbuf_init(&key);
	if (kv_rec_decode(data, size, &rec) == 0) {
		MOOR_ASSERT(kv_rec_encode(a, &b, &rec) == 0);
		MOOR_ASSERT(b.len == size && memcmp(b.p, data, size) == 0);
	}
	if (kv_key_index_parse(a, data, size, &key, &r) == 0) {
		MOOR_ASSERT(kv_key_index(a, &b, key.p, key.len, r) == 0);
		MOOR_ASSERT(b.len == size && memcmp(b.p, data, size) == 0);
	}
	/* Two user keys from the input: escaping keeps their order. */
	if (half > 0) {
		struct kv_rev r1 = {7, 0}, r2 = {3, 1};
		int c_user, c_enc;
		size_t l2 = size - half;

		MOOR_ASSERT(kv_key_index(a, &k1, data, half, r1) == 0);
		MOOR_ASSERT(kv_key_index(a, &k2, data + half, l2, r2) == 0);
		c_user = memcmp(data, data + half, half < l2 ? half : l2);
		if (c_user == 0)
			c_user = half < l2 ? -1 : half > l2;
		c_enc = memcmp(k1.p, k2.p, k1.len < k2.len ? k1.len : k2.len);
		if (c_enc == 0)
			c_enc = k1.len < k2.len ? -1 : k1.len > k2.len;
		if (c_user != 0)
			MOOR_ASSERT((c_user < 0) == (c_enc < 0));
		else
			MOOR_ASSERT(c_enc > 0); /* same key: revision 7.0 after 3.1 */
		MOOR_ASSERT(kv_key_index_parse(a, k1.p, k1.len, &key, &r) == 0);
		MOOR_ASSERT(key.len == half && memcmp(key.p, data, half) == 0);
		MOOR_ASSERT(r.main == 7 && r.sub == 0);
	}
	kv_kbuf_free(a, &b);
	kv_kbuf_free(a, &k1);
	kv_kbuf_free(a, &k2);
	kv_kbuf_free(a, &key);
	return 0;
}
