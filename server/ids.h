/*
 * Member and cluster ids, derived as etcd derives them: an initial member's
 * id from its peer URLs and the cluster token, the cluster's id from its
 * initial members' ids and the token. Every member computes the same ids
 * from the same --initial-cluster, with nothing exchanged. A member added
 * later gets an id that also covers a salt (etcd uses the time), so that a
 * member removed and added again at the same URL is a new member: a late
 * duplicate of the old one's removal, or a peer that has not yet applied
 * the re-addition, can never mistake one for the other.
 */
#ifndef MOOR_SERVER_IDS_H
#define MOOR_SERVER_IDS_H

#include "server/config.h"

#include <stdint.h>

/* Never 0. */
uint64_t srv_member_id(const struct srv_url_list *peer_urls, const char *token);
uint64_t srv_member_id_salted(const struct srv_url_list *peer_urls, const char *token,
                              uint64_t salt);
uint64_t srv_cluster_id(const uint64_t *member_ids, int n, const char *token);

#endif
