/* The README's ten-line program: put, get and watch with libmoor.
 * Build: cc hello.c $(pkg-config --cflags --libs moor) */
#include "client/moor.h"
#include <stdio.h>

int main(int argc, char **argv)
{
	const char *eps[] = {argc > 1 ? argv[1] : "127.0.0.1:2379"};
	struct moor_config cfg = {.endpoints = eps, .n_endpoints = 1};
	moor_client *c;
	struct moor_response *r;
	moor_watch *w;
	struct moor_watch_response *ev;

	if (moor_client_open(&cfg, &c) || moor_put(c, "greeting", 8, "hello", 5, NULL, NULL) ||
	    moor_get(c, "greeting", 8, NULL, &r))
		return fprintf(stderr, "error: %s\n", moor_error_detail()), 1;
	printf("%.*s at revision %lld\n", (int)r->kvs[0].value_len, r->kvs[0].value,
	       (long long)r->header.revision);
	struct moor_watch_opts from_next = {.start_revision = r->header.revision + 1};
	if (moor_watch_start(c, "greeting", 8, &from_next, &w) == 0) { /* poll mode: no callback */
		moor_put(c, "greeting", 8, "goodbye", 7, NULL, NULL);
		if (moor_watch_next(w, 5000, &ev) == 0 && ev->n_events > 0)
			printf("watched: %.*s\n", (int)ev->events[0].kv.value_len,
			       ev->events[0].kv.value);
		moor_watch_response_free(ev);
		moor_watch_stop(w);
	}
	moor_response_free(r);
	moor_client_close(c);
	return 0;
}
