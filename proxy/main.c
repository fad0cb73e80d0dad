/* proxy/main.c: the composition root: `routetrace <subcommand>`.  Adding a subcommand is
 * one line in the table below. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "capture/cmd_capture.h"
#include "proxy/cmd_explain.h"
#include "proxy/cmd_report.h"
#include "proxy/config.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/loops.h"
#include "proxy/runtime.h"
#include "proxy/session.h"
#include "proxy/tracer.h"

#define RT_VERSION "0.1.0"
#define MAX_OVERRIDES 64

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static int cmd_proxy(int argc, char **argv);

static const struct subcommand subcommands[] = {
	{"proxy", cmd_proxy, "run the inline MySQL proxy in front of vtgate"},
	{"explain", cmd_explain, "show where the routing rules send a statement"},
	{"capture", cmd_capture, "passive sidecar: trace MySQL traffic from pcap (live or file)"},
	{"report", cmd_report, "summarise a trace: what moved, when, what still goes to the old keyspace"},
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

/* ---- proxy ------------------------------------------------------------------------- */

/* What a lane's sessions report to: the runtime, and that lane's own tracer. */
struct lane_obs {
	struct runtime *rt;
	struct tracer *tracer;
};

struct proxy_run {
	struct event_base *base;
	struct loops *loops;     /* lane 0 = base; the others run sessions on threads */
	struct lane_obs obs[LOOPS_MAX];
	void *obs_ctx[LOOPS_MAX];
	struct cfg *cfg;         /* current config (reference) */
	struct listener *lis;
	struct runtime *rt;      /* tracer, trace sink, rules mirror, admin */
	const char *path;        /* -c FILE or NULL */
	struct cfg_override ov[MAX_OVERRIDES];
	size_t n_ov;
	bool draining;
};

static void
proxy_usage(FILE *out)
{
	const char *name, *doc;
	bool reloadable;

	fprintf(out,
		"usage: routetrace proxy [-c FILE] [--listen ADDR]... [--upstream ADDR] [--rules SRC]\n"
		"                        [--trace FILE] [--admin ADDR] [--guard MODE]\n"
		"                        [--log-level LEVEL] [--set KEY=VALUE]... [--check-config]\n"
		"  -c, --config FILE     JSON config (see conf/routetrace.json); flags override it\n"
		"  -l, --listen ADDR     host:port, [v6]:port or unix:/path (repeatable; replaces\n"
		"                        the file's list)\n"
		"  -u, --upstream ADDR   vtgate's MySQL address: host:port or unix:/path\n"
		"      --log-level L     error | warn | info | debug\n"
		"      --rules SRC       routing rules: file:PATH | http://... | exec:CMD\n"
		"      --trace FILE      trace JSON lines to FILE (- = stdout)\n"
		"      --admin ADDR      admin HTTP (/health /stats /metrics /rules) on ADDR\n"
		"      --guard MODE      DDL guard: off | warn | block\n"
		"  -s, --set KEY=VALUE   override any config key\n"
		"      --check-config    load and validate the config, print it, exit\n"
		"signals: SIGHUP reloads the file (reloadable keys), SIGTERM/SIGINT drain and exit\n"
		"config keys (* = applied by SIGHUP):\n");
	for (size_t i = 0; cfg_key_info(i, &name, &reloadable, &doc); i++)
		fprintf(out, "  %-24s%s %s\n", name, reloadable ? "*" : " ", doc);
}

static bool
add_override(struct proxy_run *pr, const char *key, const char *value)
{
	if (pr->n_ov >= MAX_OVERRIDES) {
		fprintf(stderr, "routetrace proxy: too many overrides\n");
		return false;
	}
	pr->ov[pr->n_ov].key = key;
	pr->ov[pr->n_ov].value = value;
	pr->n_ov++;
	return true;
}

/* Parses flags into pr.  Returns -1 to go on, else an exit status. */
static int
proxy_parse_args(struct proxy_run *pr, int argc, char **argv, bool *check_only)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},   {"listen", required_argument, NULL, 'l'},
		{"upstream", required_argument, NULL, 'u'}, {"log-level", required_argument, NULL, 'L'},
		{"set", required_argument, NULL, 's'},      {"check-config", no_argument, NULL, 'C'},
		{"rules", required_argument, NULL, 'R'},    {"trace", required_argument, NULL, 'T'},
		{"admin", required_argument, NULL, 'A'},    {"guard", required_argument, NULL, 'G'},
		{"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:l:u:s:h", opts, NULL)) != -1) {
		bool ok = true;
		char *eq;

		switch (ch) {
		case 'c': pr->path = optarg; break;
		case 'l': ok = add_override(pr, "listen", optarg); break;
		case 'u': ok = add_override(pr, "upstream", optarg); break;
		case 'L': ok = add_override(pr, "log_level", optarg); break;
		case 'R': ok = add_override(pr, "rules", optarg); break;
		case 'T': ok = add_override(pr, "trace", optarg); break;
		case 'A': ok = add_override(pr, "admin", optarg); break;
		case 'G': ok = add_override(pr, "guard", optarg); break;
		case 'C': *check_only = true; break;
		case 's':
			eq = strchr(optarg, '=');
			if (eq == NULL) {
				fprintf(stderr, "routetrace proxy: --set wants KEY=VALUE\n");
				return 2;
			}
			*eq = '\0';
			ok = add_override(pr, optarg, eq + 1);
			break;
		case 'h': proxy_usage(stdout); return 0;
		default: proxy_usage(stderr); return 2;
		}
		if (!ok)
			return 2;
	}
	if (optind != argc) {
		fprintf(stderr, "routetrace proxy: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return -1;
}

static void
print_config(const struct cfg *c)
{
	const char *name, *doc;
	char val[1024];
	bool reloadable;

	for (size_t i = 0; cfg_key_info(i, &name, &reloadable, &doc); i++) {
		cfg_format(c, name, val, sizeof(val));
		printf("%s = %s\n", name, val);
	}
}

/* The session observer: every session's decoder events go to the tracer. */
static void
obs_open(void *octx, struct session *s)
{
	struct lane_obs *lo = octx;

	runtime_session_opened(lo->rt);
	session_set_obs_data(s, tracer_conn_new(lo->tracer, session_id(s), session_peer(s)));
}

static enum wire_verdict
obs_event(void *octx, struct session *s, const struct wire_event *ev)
{
	struct tracer_conn *tc = session_obs_data(s);

	(void)octx;
	return tc != NULL ? tracer_conn_event(tc, session_conv(s), ev) : WIRE_FORWARD;
}

static void
obs_free_user(void *octx, struct session *s, void *user)
{
	(void)octx;
	(void)s;
	tracer_cmd_free(user);
}

static size_t
obs_block_message(void *octx, struct session *s, void *cmd_user, char *buf, size_t len)
{
	(void)octx;
	(void)s;
	return cmd_user != NULL ? tracer_block_message(cmd_user, buf, len) : 0;
}

static void
obs_close(void *octx, struct session *s, const char *reason)
{
	uint64_t c2s, s2c;

	(void)reason;
	session_bytes(s, &c2s, &s2c);
	runtime_session_closed(((struct lane_obs *)octx)->rt, c2s, s2c);
}

static void
obs_free(void *octx, struct session *s)
{
	(void)octx;
	tracer_conn_free(session_obs_data(s));
	session_set_obs_data(s, NULL);
}

static const struct session_observer tracing_observer = {
	.on_open = obs_open,
	.on_event = obs_event,
	.free_user = obs_free_user,
	.block_message = obs_block_message,
	.on_close = obs_close,
	.on_free = obs_free,
};

static void
runtime_opts_from(const struct cfg *c, struct runtime_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->source = "proxy";
	o->can_block = true;
	runtime_opts_from_cfg(c, o);
}

static void
on_sighup(evutil_socket_t sig, short what, void *ctx)
{
	struct proxy_run *pr = ctx;
	struct runtime_opts ro;
	char err[CFG_ERRLEN];
	struct cfg *fresh;

	(void)sig;
	(void)what;
	fresh = cfg_load(pr->path, pr->ov, pr->n_ov, err, sizeof(err));
	if (fresh == NULL) {
		log_error("config reload failed, keeping the current config: %s", err);
		return;
	}
	cfg_keep_non_reloadable(pr->cfg, fresh);
	runtime_opts_from(fresh, &ro);
	if (!runtime_reload(pr->rt, &ro, err, sizeof(err)))
		log_error("config reload: %s (keeping the previous value)", err);
	log_set_level(fresh->log_level);
	listener_set_config(pr->lis, fresh);
	cfg_unref(pr->cfg);
	pr->cfg = fresh;
	log_info("config reloaded%s%s (applies to new sessions)", pr->path ? " from " : "",
		 pr->path ? pr->path : "");
}

static void
drain_done(void *arg)
{
	struct proxy_run *pr = arg;

	event_base_loopexit(pr->base, NULL);
}

static void
on_sigterm(evutil_socket_t sig, short what, void *ctx)
{
	struct proxy_run *pr = ctx;

	(void)what;
	if (pr->draining) {
		log_warn("signal %d again: ending every session now", (int)sig);
		/* listener_free (after the loop) ends what is left. */
		event_base_loopexit(pr->base, NULL);
		return;
	}
	pr->draining = true;
	log_info("signal %d: draining", (int)sig);
	listener_drain(pr->lis, drain_done, pr);
}

/* 10,000 sessions need 20,000 descriptors: take the hard limit. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Lanes, runtime (with a tracer per lane), listener: undone by proxy_teardown. */
static bool
proxy_setup(struct proxy_run *pr)
{
	struct runtime_opts ro;
	char err[CFG_ERRLEN];
	unsigned n = pr->cfg->workers > 0 ? (unsigned)pr->cfg->workers : loops_default_count();

	pr->loops = loops_new(pr->base, n, err, sizeof(err));
	if (pr->loops == NULL) {
		log_error("%s", err);
		return false;
	}
	runtime_opts_from(pr->cfg, &ro);
	pr->rt = runtime_new(pr->base, &ro, err, sizeof(err));
	if (pr->rt == NULL || !runtime_attach_loops(pr->rt, pr->loops, &ro, err, sizeof(err))) {
		log_error("%s", err);
		return false;
	}
	for (unsigned i = 0; i < n; i++) {
		pr->obs[i].rt = pr->rt;
		pr->obs[i].tracer = runtime_lane_tracer(pr->rt, i);
		pr->obs_ctx[i] = &pr->obs[i];
	}
	pr->lis = listener_new(pr->loops, pr->cfg, &tracing_observer, pr->obs_ctx, err,
			       sizeof(err));
	if (pr->lis == NULL) {
		log_error("%s", err);
		return false;
	}
	log_info("routetrace %s proxy: upstream %s, client_tls=%s, %u worker loop(s)", RT_VERSION,
		 pr->cfg->upstream.text,
		 pr->cfg->client_tls == CFG_TLS_REFUSE ? "refuse" : "passthrough", n);
	return true;
}

/* The listener ends the sessions and stops the lanes; only then can the lanes'
 * tracers (in the runtime) go. */
static void
proxy_teardown(struct proxy_run *pr)
{
	listener_free(pr->lis);
	if (pr->loops != NULL)
		loops_stop(pr->loops);
	if (pr->rt != NULL)
		runtime_flush(pr->rt);
	runtime_free(pr->rt);
	loops_free(pr->loops);
}

static int
proxy_loop(struct proxy_run *pr)
{
	struct event *sig[3];
	int rc = 0;

	pr->base = event_base_new();
	if (pr->base == NULL) {
		log_error("event_base_new failed");
		return 1;
	}
	if (!proxy_setup(pr)) {
		proxy_teardown(pr);
		event_base_free(pr->base);
		return 1;
	}
	sig[0] = evsignal_new(pr->base, SIGHUP, on_sighup, pr);
	sig[1] = evsignal_new(pr->base, SIGTERM, on_sigterm, pr);
	sig[2] = evsignal_new(pr->base, SIGINT, on_sigterm, pr);
	for (int i = 0; i < 3; i++)
		evsignal_add(sig[i], NULL);
	if (event_base_dispatch(pr->base) < 0)
		rc = 1;
	proxy_teardown(pr);
	for (int i = 0; i < 3; i++)
		event_free(sig[i]);
	event_base_free(pr->base);
	log_info("routetrace proxy exited");
	return rc;
}

static int
cmd_proxy(int argc, char **argv)
{
	struct proxy_run pr = {0};
	char err[CFG_ERRLEN];
	bool check_only = false;
	int rc;

	rc = proxy_parse_args(&pr, argc, argv, &check_only);
	if (rc >= 0)
		return rc;
	pr.cfg = cfg_load(pr.path, pr.ov, pr.n_ov, err, sizeof(err));
	if (pr.cfg == NULL) {
		fprintf(stderr, "routetrace proxy: %s\n", err);
		return 1;
	}
	if (check_only) {
		print_config(pr.cfg);
		cfg_unref(pr.cfg);
		return 0;
	}
	log_set_level(pr.cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	rc = proxy_loop(&pr);
	cfg_unref(pr.cfg);
	return rc;
}

/* ---- top level --------------------------------------------------------------------- */

static void
usage(FILE *out)
{
	fprintf(out, "usage: routetrace <command> [options]   (routetrace <command> --help)\n"
		     "commands:\n");
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out, "  --help     this text\n  --version  print the version\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("routetrace %s\n", RT_VERSION);
		return 0;
	}
	for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
		if (strcmp(argv[1], subcommands[i].name) == 0) {
			optind = 1;
			return subcommands[i].run(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "routetrace: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
