/*
 * What the simulator's files (sim.c, net.c, check.c, chaos.c) share beyond
 * the public sim.h.
 */
#ifndef MOOR_TESTS_SIM_SIM_INT_H
#define MOOR_TESTS_SIM_SIM_INT_H

#include "tests/sim/sim.h"

#include <stddef.h>

#define SIM_DATA_BYTES 24 /* a proposal: 8-byte id + filler */

/* A local event: the transport tells the leader how a snapshot went. */
#define SIM_SNAP_STATUS ((enum raft_msg_type)100)

struct sim_lm {
	uint64_t index, term, hash, prev;
};

void *sim_xrealloc(void *p, size_t n); /* aborts on failure */
uint64_t sim_mix(uint64_t h, uint64_t v);
uint64_t sim_hash_bytes(const unsigned char *p, size_t n, uint64_t h);

/* net.c */
void sim_msg_free(struct raft_message *m);
void sim_msg_copy(struct raft_message *d, const struct raft_message *m);
void sim_q_push(struct sim *s, uint64_t at, const struct raft_message *m);
struct sim_msg sim_q_pop(struct sim *s);
void sim_snap_status(struct sim *s, uint64_t leader, uint64_t to, bool ok);
bool sim_link_ok(struct sim *s, uint64_t from, uint64_t to);
void sim_net_send(struct sim *s, const struct raft_message *m);

/* check.c */
void sim_check_leader(struct sim *s, uint64_t term, uint64_t id);
void sim_check_persisted(struct sim *s, struct sim_node *n, const struct raft_entry *e);
void sim_check_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e);
void sim_ack_entry(struct sim *s, struct sim_node *n, const struct raft_entry *e);
void sim_serve_reads(struct sim *s, struct sim_node *n);
void sim_check_all(struct sim *s);

#endif
