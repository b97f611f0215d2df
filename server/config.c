/*
 * Flag parsing for moord. One table lists every flag with its environment
 * variable, its default and its help line; parsing, the environment and
 * --help are all driven by it, so a new flag is one row.
 */
#include "server/config.h"

#include "common/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum flag_kind {
	FLAG_STRING,
	FLAG_URLS,
	FLAG_CLUSTER,
	FLAG_STATE,
	FLAG_LOG_FORMAT,
	FLAG_LOG_LEVEL,
	FLAG_BOOL,
	FLAG_UINT
};

struct flag {
	const char *name; /* without the leading dashes */
	const char *env;
	enum flag_kind kind;
	size_t offset;
	size_t size; /* for strings */
	const char *def;
	const char *help;
};

#define OFF(f) offsetof(struct srv_config, f)
#define STR(f) OFF(f), sizeof(((struct srv_config *)0)->f)

static const struct flag flags[] = {
    {"name", "MOOR_NAME", FLAG_STRING, STR(name), "default", "Human-readable name of this member."},
    {"data-dir", "MOOR_DATA_DIR", FLAG_STRING, STR(data_dir), "",
     "Path to the data directory (default: ${name}.moor)."},
    {"listen-client-urls", "MOOR_LISTEN_CLIENT_URLS", FLAG_URLS, OFF(listen_client_urls), 0,
     "http://localhost:2379", "Comma-separated URLs to listen on for client traffic."},
    {"advertise-client-urls", "MOOR_ADVERTISE_CLIENT_URLS", FLAG_URLS, OFF(advertise_client_urls),
     0, "", "Comma-separated client URLs to advertise to the cluster (default: listen URLs)."},
    {"listen-peer-urls", "MOOR_LISTEN_PEER_URLS", FLAG_URLS, OFF(listen_peer_urls), 0,
     "http://localhost:2380", "Comma-separated URLs to listen on for peer traffic."},
    {"initial-advertise-peer-urls", "MOOR_INITIAL_ADVERTISE_PEER_URLS", FLAG_URLS,
     OFF(initial_advertise_peer_urls), 0, "",
     "This member's peer URLs to advertise to the cluster (default: listen peer URLs)."},
    {"initial-cluster", "MOOR_INITIAL_CLUSTER", FLAG_CLUSTER, OFF(initial_cluster), 0, "",
     "Initial cluster configuration: name=peer-url,... (default: ${name}=${peer URL})."},
    {"initial-cluster-token", "MOOR_INITIAL_CLUSTER_TOKEN", FLAG_STRING, STR(initial_cluster_token),
     "moor-cluster", "Initial cluster token; distinct clusters get distinct cluster ids."},
    {"initial-cluster-state", "MOOR_INITIAL_CLUSTER_STATE", FLAG_STATE, OFF(initial_cluster_state),
     0, "new", "Initial cluster state: 'new' or 'existing'."},
    {"max-request-bytes", "MOOR_MAX_REQUEST_BYTES", FLAG_UINT, OFF(max_request_bytes), 0, "1572864",
     "Largest client request accepted, in bytes."},
    {"max-txn-ops", "MOOR_MAX_TXN_OPS", FLAG_UINT, OFF(max_txn_ops), 0, "128",
     "Most operations in one transaction."},
    {"heartbeat-interval", "MOOR_HEARTBEAT_INTERVAL", FLAG_UINT, OFF(heartbeat_ms), 0, "100",
     "Time between leader heartbeats, in milliseconds (one raft tick)."},
    {"election-timeout", "MOOR_ELECTION_TIMEOUT", FLAG_UINT, OFF(election_timeout_ms), 0, "1000",
     "Time without a leader before an election, in milliseconds."},
    {"snapshot-count", "MOOR_SNAPSHOT_COUNT", FLAG_UINT, OFF(snapshot_count), 0, "10000",
     "Applied entries between two compactions of the log (store flush, WAL release)."},
    {"quota-backend-bytes", "MOOR_QUOTA_BACKEND_BYTES", FLAG_UINT, OFF(quota_backend_bytes), 0,
     "2147483648",
     "Size of the store on disk above which a NOSPACE alarm refuses writes that add data."},
    {"restore-snapshot", NULL, FLAG_STRING, STR(restore_snapshot), "",
     "Build this member's (new, empty) data directory from a backup written by "
     "'moorctl snapshot save', then exit; start it again without this flag."},
    {"cert-file", "MOOR_CERT_FILE", FLAG_STRING, STR(cert_file), "",
     "Path to the client server TLS certificate (PEM; the chain may follow it). Used by "
     "https:// client URLs."},
    {"key-file", "MOOR_KEY_FILE", FLAG_STRING, STR(key_file), "",
     "Path to the client server TLS key (PEM, unencrypted)."},
    {"trusted-ca-file", "MOOR_TRUSTED_CA_FILE", FLAG_STRING, STR(trusted_ca_file), "",
     "Path to the CA bundle (PEM) that client certificates are verified against."},
    {"client-cert-auth", "MOOR_CLIENT_CERT_AUTH", FLAG_BOOL, OFF(client_cert_auth), 0, NULL,
     "Require every client of an https:// client URL to present a certificate signed by "
     "a CA in --trusted-ca-file; the TLS handshake fails otherwise."},
    {"peer-cert-file", "MOOR_PEER_CERT_FILE", FLAG_STRING, STR(peer_cert_file), "",
     "Path to the peer TLS certificate (PEM; the chain may follow it). Presented both as "
     "the server certificate of an https:// listen-peer-url and as the client certificate "
     "when dialling peers whose URL is https://."},
    {"peer-key-file", "MOOR_PEER_KEY_FILE", FLAG_STRING, STR(peer_key_file), "",
     "Path to the peer TLS key (PEM, unencrypted)."},
    {"peer-trusted-ca-file", "MOOR_PEER_TRUSTED_CA_FILE", FLAG_STRING, STR(peer_trusted_ca_file),
     "",
     "Path to the CA bundle (PEM) that peers' certificates are verified against (default: "
     "the system's CAs for dialled peers)."},
    {"peer-client-cert-auth", "MOOR_PEER_CLIENT_CERT_AUTH", FLAG_BOOL, OFF(peer_client_cert_auth),
     0, NULL,
     "Require every peer connecting to an https:// listen-peer-url to present a certificate "
     "signed by a CA in --peer-trusted-ca-file; the TLS handshake fails otherwise."},
    {"peer-cert-allowed-cn", "MOOR_PEER_CERT_ALLOWED_CN", FLAG_STRING, STR(peer_cert_allowed_cn),
     "",
     "With --peer-client-cert-auth: accept only peer client certificates whose Common Name "
     "is this."},
    {"log-format", "MOOR_LOG_FORMAT", FLAG_LOG_FORMAT, OFF(log_format), 0, "text",
     "Log format: 'text' or 'json' (one line per event, to stderr)."},
    {"log-level", "MOOR_LOG_LEVEL", FLAG_LOG_LEVEL, OFF(log_level), 0, "info",
     "Log level: debug, info, warn or error."},
    {"help", NULL, FLAG_BOOL, OFF(help), 0, NULL, "Print this help and exit."},
    {"version", NULL, FLAG_BOOL, OFF(version), 0, NULL, "Print the version and exit."},
};

#define NFLAGS (sizeof flags / sizeof flags[0])

int srv_url_parse(const char *s, struct srv_url *out)
{
	const char *p, *colon;
	char *end;
	long port;
	size_t hl;

	memset(out, 0, sizeof *out);
	if (strlen(s) >= sizeof out->text)
		return MOOR_EINVAL;
	snprintf(out->text, sizeof out->text, "%s", s);
	if (strncmp(s, "http://", 7) == 0) {
		p = s + 7;
	} else if (strncmp(s, "https://", 8) == 0) {
		p = s + 8;
		out->tls = 1;
	} else {
		return MOOR_EINVAL;
	}
	if (*p == '[') { /* [v6]:port */
		const char *rb = strchr(p, ']');
		if (!rb || rb[1] != ':')
			return MOOR_EINVAL;
		hl = (size_t)(rb - p - 1);
		if (hl == 0 || hl >= sizeof out->host)
			return MOOR_EINVAL;
		memcpy(out->host, p + 1, hl);
		colon = rb + 1;
	} else {
		colon = strrchr(p, ':');
		if (!colon)
			return MOOR_EINVAL;
		hl = (size_t)(colon - p);
		if (hl == 0 || hl >= sizeof out->host)
			return MOOR_EINVAL;
		memcpy(out->host, p, hl);
	}
	out->host[hl] = '\0';
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)out->host[i]) && !strchr(".-_:", out->host[i]))
			return MOOR_EINVAL;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || port < 1 || port > 65535)
		return MOOR_EINVAL;
	if (*end == '/')
		end++;
	if (*end != '\0')
		return MOOR_EINVAL;
	out->port = (uint16_t)port;
	return 0;
}

static int parse_urls(const char *v, struct srv_url_list *l)
{
	char tmp[2048];
	char *save = NULL, *tok;

	memset(l, 0, sizeof *l);
	if (*v == '\0')
		return 0;
	if (strlen(v) >= sizeof tmp)
		return MOOR_EINVAL;
	snprintf(tmp, sizeof tmp, "%s", v);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (l->n == SRV_MAX_URLS || srv_url_parse(tok, &l->url[l->n]) != 0)
			return MOOR_EINVAL;
		l->n++;
	}
	return l->n ? 0 : MOOR_EINVAL;
}

static int parse_cluster(const char *v, struct srv_config *cfg)
{
	char tmp[4096];
	char *save = NULL, *tok;

	cfg->initial_cluster_n = 0;
	if (*v == '\0')
		return 0;
	if (strlen(v) >= sizeof tmp)
		return MOOR_EINVAL;
	snprintf(tmp, sizeof tmp, "%s", v);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		struct srv_initial_member *m = NULL;
		if (!eq || eq == tok || (size_t)(eq - tok) >= sizeof m->name)
			return MOOR_EINVAL;
		*eq = '\0';
		/* The same name twice means one member with several peer URLs. */
		for (int i = 0; i < cfg->initial_cluster_n; i++)
			if (strcmp(cfg->initial_cluster[i].name, tok) == 0)
				m = &cfg->initial_cluster[i];
		if (!m) {
			if (cfg->initial_cluster_n == SRV_MAX_MEMBERS)
				return MOOR_EINVAL;
			m = &cfg->initial_cluster[cfg->initial_cluster_n++];
			memset(m, 0, sizeof *m);
			snprintf(m->name, sizeof m->name, "%s", tok);
		}
		if (m->peer_urls.n == SRV_MAX_URLS ||
		    srv_url_parse(eq + 1, &m->peer_urls.url[m->peer_urls.n]) != 0)
			return MOOR_EINVAL;
		m->peer_urls.n++;
	}
	return 0;
}

static const char *kind_hint(enum flag_kind k)
{
	switch (k) {
	case FLAG_URLS:
		return "a comma-separated list of http(s)://host:port URLs";
	case FLAG_CLUSTER:
		return "name=http(s)://host:port,... ";
	case FLAG_STATE:
		return "'new' or 'existing'";
	case FLAG_LOG_FORMAT:
		return "'text' or 'json'";
	case FLAG_LOG_LEVEL:
		return "debug, info, warn or error";
	case FLAG_BOOL:
		return "true or false";
	case FLAG_STRING:
		return "a non-empty string shorter than the limit";
	case FLAG_UINT:
		return "a positive integer";
	}
	return "";
}

static int set_flag(struct srv_config *cfg, const struct flag *f, const char *v)
{
	char *base = (char *)cfg + f->offset;

	switch (f->kind) {
	case FLAG_STRING:
		if (strlen(v) >= f->size)
			return MOOR_EINVAL;
		snprintf(base, f->size, "%s", v);
		return 0;
	case FLAG_URLS:
		return parse_urls(v, (struct srv_url_list *)(void *)base);
	case FLAG_CLUSTER:
		return parse_cluster(v, cfg);
	case FLAG_STATE:
		if (strcmp(v, "new") == 0)
			cfg->initial_cluster_state = SRV_CLUSTER_NEW;
		else if (strcmp(v, "existing") == 0)
			cfg->initial_cluster_state = SRV_CLUSTER_EXISTING;
		else
			return MOOR_EINVAL;
		return 0;
	case FLAG_LOG_FORMAT:
		if (strcmp(v, "text") == 0)
			cfg->log_format = SRV_LOG_TEXT;
		else if (strcmp(v, "json") == 0)
			cfg->log_format = SRV_LOG_JSON;
		else
			return MOOR_EINVAL;
		return 0;
	case FLAG_LOG_LEVEL:
		return moor_log_level_parse(v, &cfg->log_level);
	case FLAG_UINT: {
		char *end;
		unsigned long long x;
		if (!isdigit((unsigned char)*v))
			return MOOR_EINVAL;
		errno = 0;
		x = strtoull(v, &end, 10);
		if (errno || *end || x == 0)
			return MOOR_EINVAL;
		*(uint64_t *)(void *)base = x;
		return 0;
	}
	case FLAG_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*(int *)(void *)base = 1;
		else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			*(int *)(void *)base = 0;
		else
			return MOOR_EINVAL;
		return 0;
	}
	return MOOR_EINVAL;
}

static const struct flag *find_flag(const char *name, size_t len)
{
	for (size_t i = 0; i < NFLAGS; i++)
		if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
			return &flags[i];
	return NULL;
}

static const char *env_lookup(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* An https peer URL of this member needs a certificate and key; client
 * certificate checks need the CAs to check against. */
static int check_peer_tls(const struct srv_config *cfg, char *err, size_t errlen)
{
	const struct srv_url_list *lists[] = {&cfg->listen_peer_urls,
	                                      &cfg->initial_advertise_peer_urls};
	const char *names[] = {"--listen-peer-urls", "--initial-advertise-peer-urls"};
	int nocert = cfg->peer_cert_file[0] == '\0', nokey = cfg->peer_key_file[0] == '\0';

	for (int l = 0; l < 2; l++)
		for (int i = 0; i < lists[l]->n; i++)
			if (lists[l]->url[i].tls && (nocert || nokey)) {
				snprintf(err, errlen,
				         "%s %s is https: it needs --peer-cert-file and "
				         "--peer-key-file (%s missing)",
				         names[l], lists[l]->url[i].text,
				         nocert && nokey ? "both"
				         : nocert        ? "--peer-cert-file"
				                         : "--peer-key-file");
				return MOOR_EINVAL;
			}
	if (nocert != nokey) {
		snprintf(err, errlen, "%s is set without %s: give both or neither",
		         nocert ? "--peer-key-file" : "--peer-cert-file",
		         nocert ? "--peer-cert-file" : "--peer-key-file");
		return MOOR_EINVAL;
	}
	if (cfg->peer_client_cert_auth && cfg->peer_trusted_ca_file[0] == '\0') {
		snprintf(err, errlen,
		         "--peer-client-cert-auth needs --peer-trusted-ca-file: the CA bundle that "
		         "peer certificates are verified against");
		return MOOR_EINVAL;
	}
	if (cfg->peer_cert_allowed_cn[0] && !cfg->peer_client_cert_auth) {
		snprintf(err, errlen,
		         "--peer-cert-allowed-cn needs --peer-client-cert-auth: without it peers "
		         "present no certificate to check");
		return MOOR_EINVAL;
	}
	return 0;
}

int srv_config_parse(struct srv_config *cfg, int argc, char **argv, char **envp, char *err,
                     size_t errlen)
{
	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < NFLAGS; i++) {
		const char *v = flags[i].def;
		const char *e = flags[i].env ? env_lookup(envp, flags[i].env) : NULL;
		if (v && set_flag(cfg, &flags[i], v) != 0) {
			snprintf(err, errlen, "internal: bad default for --%s", flags[i].name);
			return MOOR_EINVAL;
		}
		if (e && set_flag(cfg, &flags[i], e) != 0) {
			snprintf(err, errlen, "invalid value %s=\"%s\": expected %s", flags[i].env,
			         e, kind_hint(flags[i].kind));
			return MOOR_EINVAL;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *eq, *v;
		const struct flag *f;
		size_t len;

		if (a[0] != '-') {
			snprintf(err, errlen, "unexpected argument \"%s\" (flags start with --)",
			         a);
			return MOOR_EINVAL;
		}
		name = a + (a[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		if ((len == 1 && name[0] == 'h') && !eq)
			f = find_flag("help", 4);
		else
			f = find_flag(name, len);
		if (!f) {
			snprintf(err, errlen, "unknown flag: %s (see --help)", a);
			return MOOR_EINVAL;
		}
		if (eq) {
			v = eq + 1;
		} else if (f->kind == FLAG_BOOL) {
			v = "true";
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			snprintf(err, errlen, "flag --%s needs a value", f->name);
			return MOOR_EINVAL;
		}
		if (set_flag(cfg, f, v) != 0) {
			snprintf(err, errlen, "invalid value for --%s: \"%s\": expected %s",
			         f->name, v, kind_hint(f->kind));
			return MOOR_EINVAL;
		}
	}
	/* Derived defaults, as etcd derives them. */
	if (cfg->data_dir[0] == '\0')
		snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s.moor", cfg->name);
	if (cfg->advertise_client_urls.n == 0)
		cfg->advertise_client_urls = cfg->listen_client_urls;
	if (cfg->initial_advertise_peer_urls.n == 0)
		cfg->initial_advertise_peer_urls = cfg->listen_peer_urls;
	if (cfg->initial_cluster_n == 0) {
		cfg->initial_cluster_n = 1;
		snprintf(cfg->initial_cluster[0].name, sizeof cfg->initial_cluster[0].name, "%s",
		         cfg->name);
		cfg->initial_cluster[0].peer_urls = cfg->initial_advertise_peer_urls;
	}
	if (cfg->help || cfg->version)
		return 0;
	if (cfg->listen_client_urls.n == 0) {
		snprintf(err, errlen, "--listen-client-urls must name at least one URL");
		return MOOR_EINVAL;
	}
	for (int i = 0; i < cfg->listen_client_urls.n; i++)
		if (cfg->listen_client_urls.url[i].tls &&
		    (cfg->cert_file[0] == '\0' || cfg->key_file[0] == '\0')) {
			snprintf(err, errlen,
			         "--listen-client-urls %s is https: it needs --cert-file and "
			         "--key-file (%s missing)",
			         cfg->listen_client_urls.url[i].text,
			         cfg->cert_file[0] == '\0' && cfg->key_file[0] == '\0' ? "both"
			         : cfg->cert_file[0] == '\0' ? "--cert-file"
			                                     : "--key-file");
			return MOOR_EINVAL;
		}
	if (cfg->client_cert_auth && cfg->trusted_ca_file[0] == '\0') {
		snprintf(err, errlen,
		         "--client-cert-auth needs --trusted-ca-file: the CA bundle that client "
		         "certificates are verified against");
		return MOOR_EINVAL;
	}
	if (check_peer_tls(cfg, err, errlen) != 0)
		return MOOR_EINVAL;
	if (cfg->election_timeout_ms < 5 * cfg->heartbeat_ms || cfg->election_timeout_ms > 50000) {
		snprintf(err, errlen,
		         "--election-timeout (%llu ms) must be at least 5 heartbeats (%llu ms) "
		         "and at most 50000 ms",
		         (unsigned long long)cfg->election_timeout_ms,
		         (unsigned long long)cfg->heartbeat_ms);
		return MOOR_EINVAL;
	}
	int self = 0;
	for (int i = 0; i < cfg->initial_cluster_n; i++)
		if (strcmp(cfg->initial_cluster[i].name, cfg->name) == 0)
			self = 1;
	if (!self) {
		snprintf(err, errlen, "--initial-cluster has no member named \"%s\" (--name)",
		         cfg->name);
		return MOOR_EINVAL;
	}
	return 0;
}

void srv_config_usage(FILE *out)
{
	fprintf(out, "Usage: moord [flags]\n\n"
	             "moord is a member of a moor cluster: a consistent key-value store that\n"
	             "speaks etcd's v3 API. Every flag can also be set by the environment\n"
	             "variable shown; a flag given on the command line wins.\n\nFlags:\n");
	for (size_t i = 0; i < NFLAGS; i++) {
		const struct flag *f = &flags[i];
		fprintf(out, "  --%s%s\n      %s", f->name, f->kind == FLAG_BOOL ? "" : " VALUE",
		        f->help);
		if (f->def && *f->def && f->kind != FLAG_BOOL)
			fprintf(out, " Default: %s.", f->def);
		if (f->env)
			fprintf(out, " [$%s]", f->env);
		fprintf(out, "\n");
	}
	fprintf(out, "\nExit codes: 0 after a clean stop, 1 when it cannot start or run,\n"
	             "2 on a malformed command line.\n");
}
