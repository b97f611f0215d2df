/*
 * moord's configuration: command-line flags, each also read from an
 * environment variable (--data-dir / MOOR_DATA_DIR), so a container image and
 * a Kubernetes StatefulSet need no wrapper script. A flag on the command line
 * wins over its variable, which wins over the default.
 *
 * Flag names and defaults are etcd's where etcd has the flag.
 */
#ifndef MOOR_SERVER_CONFIG_H
#define MOOR_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"

#define SRV_MAX_URLS 8
#define SRV_MAX_MEMBERS 9

/* A parsed http(s)://host:port URL. */
struct srv_url {
	char text[256]; /* as given */
	char host[128];
	uint16_t port;
	int tls; /* 1 for https */
};

struct srv_url_list {
	struct srv_url url[SRV_MAX_URLS];
	int n;
};

struct srv_initial_member {
	char name[64];
	struct srv_url_list peer_urls;
};

enum srv_cluster_state { SRV_CLUSTER_NEW, SRV_CLUSTER_EXISTING };
enum srv_log_format { SRV_LOG_TEXT, SRV_LOG_JSON };

struct srv_config {
	char name[64];
	char data_dir[1024];
	struct srv_url_list listen_client_urls;
	struct srv_url_list advertise_client_urls;
	struct srv_url_list listen_peer_urls;
	struct srv_url_list initial_advertise_peer_urls;
	struct srv_initial_member initial_cluster[SRV_MAX_MEMBERS];
	int initial_cluster_n;
	char initial_cluster_token[64];
	enum srv_cluster_state initial_cluster_state;
	uint64_t max_request_bytes;   /* --max-request-bytes, 1.5 MiB */
	uint64_t max_txn_ops;         /* --max-txn-ops, 128 */
	uint64_t heartbeat_ms;        /* --heartbeat-interval, 100 */
	uint64_t election_timeout_ms; /* --election-timeout, 1000 */
	uint64_t snapshot_count;      /* --snapshot-count, 10000 */
	uint64_t quota_backend_bytes; /* --quota-backend-bytes, 2 GiB */
	char restore_snapshot[1024];  /* --restore-snapshot: build the data dir, exit */
	/* Client TLS (etcd's flags): used by https:// listen-client-urls only;
	 * an http:// URL stays plain whatever is set here. */
	char cert_file[1024];       /* --cert-file: server certificate chain, PEM */
	char key_file[1024];        /* --key-file: its private key, PEM */
	char trusted_ca_file[1024]; /* --trusted-ca-file: CAs for client certificates */
	int client_cert_auth;       /* --client-cert-auth: require a verified client cert */
	/* Peer TLS (etcd's flags): used on https:// listen-peer-urls and to
	 * dial peers whose URL is https (see server/peer_tls.h). */
	char peer_cert_file[1024];       /* --peer-cert-file: certificate chain, PEM */
	char peer_key_file[1024];        /* --peer-key-file: its private key, PEM */
	char peer_trusted_ca_file[1024]; /* --peer-trusted-ca-file: CAs for peers */
	int peer_client_cert_auth;       /* --peer-client-cert-auth */
	char peer_cert_allowed_cn[256];  /* --peer-cert-allowed-cn: "" any */
	enum srv_log_format log_format;
	enum moor_log_level log_level;
	int help;    /* --help given: print usage, exit 0 */
	int version; /* --version given: print version, exit 0 */
};

/*
 * Fills `cfg` from defaults, then the environment (`envp`, NULL-terminated
 * "NAME=value" strings, may be NULL), then argv. On a malformed or unknown
 * flag or value returns MOOR_EINVAL and writes one line naming the problem
 * into err (moord then exits 2). Never prints.
 */
int srv_config_parse(struct srv_config *cfg, int argc, char **argv, char **envp, char *err,
                     size_t errlen);

/* Parses one URL ("http://127.0.0.1:2379"); 0 or MOOR_EINVAL. */
int srv_url_parse(const char *s, struct srv_url *out);

/* The --help text. */
void srv_config_usage(FILE *out);

#define MOOR_VERSION "0.1.0"
/* The etcd version moor answers to (Status.version, /version): clients gate
 * features on it (Kubernetes needs >= 3.4.25 and not 3.5.0–3.5.7 for
 * RequestWatchProgress). */
#define MOOR_ETCD_VERSION "3.5.17"
#define MOOR_ETCD_CLUSTER_VERSION "3.5.0"

#endif
