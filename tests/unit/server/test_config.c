/* Unit tests for moord's configuration: flags, environment, defaults, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "server/config.h"

#include <string.h>

static int parse(struct srv_config *c, char **env, char *err, int argc, ...)
{
	char *argv[32] = {"moord"};
	va_list ap;

	va_start(ap, argc);
	for (int i = 1; i <= argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return srv_config_parse(c, argc + 1, argv, env, err, 256);
}

static void defaults_follow_etcd_and_derive_from_the_name(void **state)
{
	struct srv_config c;
	char err[256];

	(void)state;
	assert_int_equal(parse(&c, NULL, err, 2, "--name", "n1"), 0);
	assert_string_equal(c.data_dir, "n1.moor");
	assert_int_equal(c.listen_client_urls.n, 1);
	assert_string_equal(c.listen_client_urls.url[0].host, "localhost");
	assert_int_equal(c.listen_client_urls.url[0].port, 2379);
	assert_int_equal(c.advertise_client_urls.url[0].port, 2379);
	assert_int_equal(c.initial_cluster_n, 1);
	assert_string_equal(c.initial_cluster[0].name, "n1");
	assert_int_equal(c.initial_cluster[0].peer_urls.url[0].port, 2380);
	assert_int_equal(c.initial_cluster_state, SRV_CLUSTER_NEW);
	assert_int_equal(c.log_level, MOOR_LOG_INFO);
}

static void a_flag_wins_over_its_variable_which_wins_over_the_default(void **state)
{
	struct srv_config c;
	char err[256];
	char *env[] = {"MOOR_NAME=fromenv", "MOOR_DATA_DIR=/tmp/x", "OTHER=1", NULL};

	(void)state;
	assert_int_equal(parse(&c, env, err, 0), 0);
	assert_string_equal(c.name, "fromenv");
	assert_string_equal(c.data_dir, "/tmp/x");
	assert_int_equal(parse(&c, env, err, 1, "--name=fromflag"), 0);
	assert_string_equal(c.name, "fromflag");
}

static void initial_cluster_lists_members_and_their_urls(void **state)
{
	struct srv_config c;
	char err[256];

	(void)state;
	assert_int_equal(
	    parse(&c, NULL, err, 4, "--name", "b", "--initial-cluster",
	          "a=http://127.0.0.1:1,b=http://127.0.0.2:2,b=https://[::1]:3,c=http://"
	          "h:4"),
	    0);
	assert_int_equal(c.initial_cluster_n, 3);
	assert_string_equal(c.initial_cluster[1].name, "b");
	assert_int_equal(c.initial_cluster[1].peer_urls.n, 2);
	assert_string_equal(c.initial_cluster[1].peer_urls.url[1].host, "::1");
	assert_int_equal(c.initial_cluster[1].peer_urls.url[1].tls, 1);
}

static void malformed_input_is_refused_with_a_message_naming_it(void **state)
{
	struct srv_config c;
	char err[256];
	char *env[] = {"MOOR_LOG_LEVEL=loud", NULL};

	(void)state;
	assert_int_equal(parse(&c, NULL, err, 1, "--bogus"), MOOR_EINVAL);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(parse(&c, NULL, err, 1, "--name"), MOOR_EINVAL);
	assert_non_null(strstr(err, "needs a value"));
	assert_int_equal(parse(&c, NULL, err, 2, "--listen-peer-urls", "http://h:99999"),
	                 MOOR_EINVAL);
	assert_int_equal(parse(&c, NULL, err, 2, "--initial-cluster", "=http://h:1"), MOOR_EINVAL);
	assert_int_equal(parse(&c, NULL, err, 1, "positional"), MOOR_EINVAL);
	assert_int_equal(parse(&c, env, err, 0), MOOR_EINVAL);
	assert_non_null(strstr(err, "MOOR_LOG_LEVEL"));
	assert_int_equal(parse(&c, NULL, err, 3, "--name", "x", "--initial-cluster=a=http://h:1"),
	                 MOOR_EINVAL);
	assert_non_null(strstr(err, "no member named"));
}

static void urls_are_parsed_strictly(void **state)
{
	struct srv_url u;

	(void)state;
	assert_int_equal(srv_url_parse("http://127.0.0.1:2379", &u), 0);
	assert_int_equal(u.port, 2379);
	assert_int_equal(srv_url_parse("http://127.0.0.1:2379/", &u), 0);
	assert_int_equal(srv_url_parse("https://[::1]:1", &u), 0);
	assert_int_equal(srv_url_parse("http://h", &u), MOOR_EINVAL);
	assert_int_equal(srv_url_parse("http://:1", &u), MOOR_EINVAL);
	assert_int_equal(srv_url_parse("http://h:0", &u), MOOR_EINVAL);
	assert_int_equal(srv_url_parse("http://h:1x", &u), MOOR_EINVAL);
	assert_int_equal(srv_url_parse("http://h/a:1", &u), MOOR_EINVAL);
	assert_int_equal(srv_url_parse("tcp://h:1", &u), MOOR_EINVAL);
	assert_int_equal(srv_url_parse("http://[::1:1", &u), MOOR_EINVAL);
}

static void https_client_urls_need_a_certificate_and_key(void **state)
{
	struct srv_config c;
	char err[256];
	char *env[] = {"MOOR_CERT_FILE=/e/c.pem", "MOOR_KEY_FILE=/e/k.pem",
	               "MOOR_TRUSTED_CA_FILE=/e/ca.pem", "MOOR_CLIENT_CERT_AUTH=true", NULL};

	(void)state;
	assert_int_equal(parse(&c, NULL, err, 2, "--listen-client-urls", "https://127.0.0.1:1"),
	                 MOOR_EINVAL);
	assert_non_null(strstr(err, "https://127.0.0.1:1 is https"));
	assert_non_null(strstr(err, "(both missing)"));
	assert_int_equal(parse(&c, NULL, err, 4, "--listen-client-urls", "https://127.0.0.1:1",
	                       "--key-file", "/k.pem"),
	                 MOOR_EINVAL);
	assert_non_null(strstr(err, "(--cert-file missing)"));
	assert_int_equal(parse(&c, NULL, err, 5, "--listen-client-urls", "https://127.0.0.1:1",
	                       "--cert-file", "/c.pem", "--key-file=/k.pem"),
	                 0);
	assert_int_equal(c.listen_client_urls.url[0].tls, 1);
	assert_string_equal(c.cert_file, "/c.pem");
	assert_string_equal(c.key_file, "/k.pem");
	assert_int_equal(c.client_cert_auth, 0);
	/* http with certificate flags stays plain, as in etcd: no error */
	assert_int_equal(parse(&c, NULL, err, 4, "--cert-file", "/c.pem", "--key-file", "/k.pem"),
	                 0);
	assert_int_equal(c.listen_client_urls.url[0].tls, 0);
	/* --client-cert-auth needs the CA bundle to verify against */
	assert_int_equal(parse(&c, NULL, err, 1, "--client-cert-auth"), MOOR_EINVAL);
	assert_non_null(strstr(err, "--trusted-ca-file"));
	assert_int_equal(parse(&c, NULL, err, 2, "--client-cert-auth", "--trusted-ca-file=/ca.pem"),
	                 0);
	assert_int_equal(c.client_cert_auth, 1);
	assert_string_equal(c.trusted_ca_file, "/ca.pem");
	/* and all four from the environment */
	assert_int_equal(parse(&c, env, err, 2, "--listen-client-urls", "https://127.0.0.1:1"), 0);
	assert_string_equal(c.cert_file, "/e/c.pem");
	assert_string_equal(c.key_file, "/e/k.pem");
	assert_string_equal(c.trusted_ca_file, "/e/ca.pem");
	assert_int_equal(c.client_cert_auth, 1);
}

static void https_peer_urls_need_a_peer_certificate_and_key(void **state)
{
	struct srv_config c;
	char err[256];
	char *env[] = {"MOOR_PEER_CERT_FILE=/e/c.pem",        "MOOR_PEER_KEY_FILE=/e/k.pem",
	               "MOOR_PEER_TRUSTED_CA_FILE=/e/ca.pem", "MOOR_PEER_CLIENT_CERT_AUTH=true",
	               "MOOR_PEER_CERT_ALLOWED_CN=m1",        NULL};

	(void)state;
	assert_int_equal(parse(&c, NULL, err, 2, "--listen-peer-urls", "https://127.0.0.1:1"),
	                 MOOR_EINVAL);
	assert_non_null(strstr(err, "--listen-peer-urls https://127.0.0.1:1 is https"));
	assert_non_null(strstr(err, "--peer-cert-file and --peer-key-file (both missing)"));
	/* the advertised URL alone is enough to need them */
	assert_int_equal(parse(&c, NULL, err, 6, "--initial-advertise-peer-urls",
	                       "https://127.0.0.1:1", "--initial-cluster",
	                       "default=https://127.0.0.1:1", "--peer-cert-file", "/c.pem"),
	                 MOOR_EINVAL);
	assert_non_null(strstr(err, "--initial-advertise-peer-urls https://127.0.0.1:1 is https"));
	assert_non_null(strstr(err, "(--peer-key-file missing)"));
	assert_int_equal(parse(&c, NULL, err, 2, "--peer-key-file", "/k.pem"), MOOR_EINVAL);
	assert_non_null(strstr(err, "--peer-key-file is set without --peer-cert-file"));
	assert_int_equal(parse(&c, NULL, err, 5, "--listen-peer-urls", "https://127.0.0.1:1",
	                       "--peer-cert-file", "/c.pem", "--peer-client-cert-auth"),
	                 MOOR_EINVAL);
	assert_non_null(strstr(err, "(--peer-key-file missing)"));
	assert_int_equal(
	    parse(&c, NULL, err, 3, "--peer-cert-file", "/c.pem", "--peer-client-cert-auth"),
	    MOOR_EINVAL);
	assert_int_equal(parse(&c, NULL, err, 5, "--peer-cert-file", "/c.pem", "--peer-key-file",
	                       "/k.pem", "--peer-client-cert-auth"),
	                 MOOR_EINVAL);
	assert_non_null(strstr(err, "--peer-client-cert-auth needs --peer-trusted-ca-file"));
	assert_int_equal(parse(&c, NULL, err, 2, "--peer-cert-allowed-cn", "m1"), MOOR_EINVAL);
	assert_non_null(strstr(err, "--peer-cert-allowed-cn needs --peer-client-cert-auth"));
	assert_int_equal(parse(&c, NULL, err, 5, "--listen-peer-urls", "https://127.0.0.1:1",
	                       "--peer-cert-file", "/c.pem", "--peer-key-file=/k.pem"),
	                 0);
	assert_int_equal(c.listen_peer_urls.url[0].tls, 1);
	assert_int_equal(c.initial_advertise_peer_urls.url[0].tls, 1);
	assert_string_equal(c.peer_cert_file, "/c.pem");
	assert_string_equal(c.peer_key_file, "/k.pem");
	assert_int_equal(c.peer_client_cert_auth, 0);
	/* all five from the environment */
	assert_int_equal(parse(&c, env, err, 2, "--listen-peer-urls", "https://127.0.0.1:1"), 0);
	assert_string_equal(c.peer_cert_file, "/e/c.pem");
	assert_string_equal(c.peer_key_file, "/e/k.pem");
	assert_string_equal(c.peer_trusted_ca_file, "/e/ca.pem");
	assert_int_equal(c.peer_client_cert_auth, 1);
	assert_string_equal(c.peer_cert_allowed_cn, "m1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults_follow_etcd_and_derive_from_the_name),
	    cmocka_unit_test(a_flag_wins_over_its_variable_which_wins_over_the_default),
	    cmocka_unit_test(initial_cluster_lists_members_and_their_urls),
	    cmocka_unit_test(malformed_input_is_refused_with_a_message_naming_it),
	    cmocka_unit_test(urls_are_parsed_strictly),
	    cmocka_unit_test(https_client_urls_need_a_certificate_and_key),
	    cmocka_unit_test(https_peer_urls_need_a_peer_certificate_and_key),
	};
	return cmocka_run_group_tests_name("server_config", tests, NULL, NULL);
}
