/* Histograms and the text format of /metrics (see metrics.h). */
#include "server/metrics.h"

#include <stdio.h>

static double bound_s(int k, int fine)
{
	return (fine ? 0.0001 : 0.001) * (double)(1u << k);
}

void srv_hist_observe(struct srv_hist *h, uint64_t ns)
{
	int fine = h->fine;
	double s = (double)ns / 1e9;
	int k;

	for (k = 0; k < SRV_HIST_BUCKETS; k++)
		if (s <= bound_s(k, fine))
			break;
	if (k < SRV_HIST_BUCKETS)
		__atomic_fetch_add(&h->bucket[k], 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&h->inf, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_ns, ns, __ATOMIC_RELAXED);
}

int srv_metric_header(struct moor_buf *out, const char *name, const char *type, const char *help)
{
	return moor_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int srv_hist_render(const struct srv_hist *h, struct moor_buf *out, const char *name,
                    const char *labels)
{
	int fine = h->fine;
	uint64_t cum = 0;
	const char *sep = labels && *labels ? "," : "";
	int rc = 0;

	if (!labels)
		labels = "";
	for (int k = 0; k < SRV_HIST_BUCKETS && rc == 0; k++) {
		cum += __atomic_load_n(&h->bucket[k], __ATOMIC_RELAXED);
		rc = moor_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
		                     bound_s(k, fine), (unsigned long long)cum);
	}
	cum += __atomic_load_n(&h->inf, __ATOMIC_RELAXED);
	if (rc == 0)
		rc = moor_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
		                     (unsigned long long)cum);
	const char *o = *labels ? "{" : "", *c = *labels ? "}" : "";
	if (rc == 0)
		rc = moor_buf_printf(out, "%s_sum%s%s%s %.9f\n%s_count%s%s%s %llu\n", name, o,
		                     labels, c,
		                     (double)__atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED) / 1e9,
		                     name, o, labels, c, (unsigned long long)cum);
	return rc;
}
