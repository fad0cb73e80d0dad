/* proxy/tracer_int.h: the tracer's own structures, shared by its two modules: tracer.c
 * (a statement's way from its command to its record: classify, resolve, guard, count,
 * write) and tracer_cache.c (the analyses kept by statement shape and by prepared text,
 * with the route memos they carry).  Only proxy/tracer*.c include it; to every other
 * module the tracer is the opaque interface of tracer.h. */
#ifndef ROUTETRACE_TRACER_INT_H
#define ROUTETRACE_TRACER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proxy/json_util.h"
#include "proxy/metrics.h"
#include "proxy/slot_index.h"
#include "proxy/tracer.h"
#include "router/classify.h"
#include "router/resolve.h"
#include "router/sql_digest.h"

#define TRACER_MAX_SQL_PREPARES 256 /* SQL-level PREPARE names remembered per connection */
#define TRACER_FRAG_SLOTS 256       /* statement shapes whose record text is kept */
#define TRACER_TARGET_SLOTS 8       /* parsed session targets kept */
#define TRACER_EXEC_SLOTS 256       /* prepared texts whose analysis is kept */
#define TRACER_SHAPE_SLOTS 256      /* statement shapes whose classification is kept */
#define TRACER_SPARE_CMDS 64        /* freed one-statement commands a lane keeps for reuse */
#define TRACER_OUTCOME_MAX 128      /* OK results with counts below this are kept as text */

/* A piece of a record's text: the members of a JSON object as jansson wrote them,
 * without the braces.  Immutable once made, shared by reference. */
struct jfrag {
	unsigned refs;
	size_t len;
	char text[];
};

/* What stmt_analyse worked out for a cached statement (a shape or a prepared text) under
 * one rules snapshot, session target and transaction state: its resolution, and the
 * metric series its tables count into, found on first use (SERIES_UNKNOWN until then).
 * The resolution borrows from the snapshot, the target slot, t->st and t->res.text; while
 * the epochs match none has changed (t->st is unpacked from the same slot, to the same
 * place), so restoring it into t->res gives what route_resolve would write. */
struct route_memo {
	uint64_t rules_epoch;         /* 0 = empty */
	uint64_t tgt_epoch;
	bool in_tx;
	bool target_known;
	uint16_t ntables;
	uint16_t text_used;
	uint32_t flags;
	enum vt_tablet_type tablet_type;
	const char *error;
	struct route_table *tables;   /* owned, one block: the tables, their series, the text */
	int *stmt_series;             /* m_stmts, max(ntables, 1) */
	int *named_series;            /* m_named_other, ntables, for named_client only */
	char *text;
	char *named_client;           /* owned */
};

#define SERIES_UNKNOWN (-2)


/* The record members a statement shape always gets the same (see stmt_frag). */
struct stmt_slot {
	uint64_t digest_hash;
	uint64_t digest_folded;       /* what the digest folds (keyword case, AS literals) */
	uint64_t rules_gen;
	const char *command;
	uint8_t cls;
	uint8_t tablet_type;
	bool in_tx;
	bool target_known;
	char target[VT_NAME_MAX];
	struct jfrag *frag;
};

/* A statement's analysis as a cache keeps it (analysis_make, analysis_restore): its key
 * bytes, a NUL and its digest in one block, the digest's hashes, its classification
 * packed (st_pack) and its route memo. */
struct analysis {
	char *text;                   /* owned: the key bytes, NUL, the digest */
	const char *digest;           /* in text, NUL-terminated */
	size_t digest_len;
	uint64_t digest_hash;
	uint64_t digest_folded;       /* what the digest folds (sql_digest_ex) */
	unsigned char *st;            /* owned: the sql_stmt's used bytes */
	struct route_memo memo;
};

/* One prepared statement's text (see conn_execute). */
struct exec_slot {
	struct analysis a;            /* key: the text as prepared, a.text[0..len) */
	unsigned lex_flags;
	size_t len;
	size_t start, slen;           /* the statement within it */
};

/* A statement shape: its skeleton, or its digest and what the digest folds. */
struct shape_slot {
	struct analysis a;            /* key: the skeleton, a.text[0..skel_len) (by_skel) */
	unsigned lex_flags;
	bool by_skel;                 /* keyed by the skeleton, else by the digest */
	size_t skel_len;
};


struct tracer {
	struct tracer_opts opts;
	struct trace_sink *sink;             /* borrowed, may be NULL */
	struct metrics *metrics;             /* borrowed, may be NULL */
	struct rules *rules;                 /* snapshot in force (owned reference) */
	struct guard_policy *guard;          /* owned, NULL = off */
	struct workflow_memory *wf;          /* what the MoveTables recogniser remembers */
	struct tracer_counts counts;
	bool mirror_stale;
	struct metric_family *m_stmts;       /* per table x tablet type x class x keyspace */
	struct metric_family *m_named_other; /* named one keyspace, reached another */
	struct metric_family *m_guard;       /* guard decisions */
	struct metric_family *m_route_err;   /* statements vtgate would refuse to plan */
	struct tcmd *spare_cmds;             /* freed one-statement commands, reused */
	unsigned nspare_cmds;                /* how many (at most TRACER_SPARE_CMDS) */
	char *scratch;                       /* redacted SQL (grows, never shrinks) */
	size_t scratch_cap;
	struct jbuf out;                     /* the line being written (grows, kept) */
	struct tgt_slot {                    /* parsed session targets, by their text: per */
		bool used;                   /* tracer, not per connection (idle sessions */
		uint64_t epoch;              /* (re)parsed: this slot's memos are void */
		char raw[VT_NAME_MAX];       /* cost no memory for them; most share a few) */
		struct vt_target tgt;
	} tgts[TRACER_TARGET_SLOTS];
	struct sql_stmt st;                  /* scratch: the statement being analysed */
	struct route_result res;             /* scratch: its resolution */
	struct route_memo *memo;             /* scratch: the memo of its cached shape or text */
	uint64_t rules_epoch;                /* t->rules replaced: every memo is void */
	uint64_t tgt_epochs;
	bool ran_other;                      /* scratch: it was analysed as another text */
	uint64_t digest_hash;
	uint64_t digest_folded;              /* sql_digest_ex: what the digest text folds */
	char digest[SQL_DIGEST_MAX];
	bool skel_ok;                        /* the statement has a skeleton (sql_skeleton): */
	size_t skel_len;                     /* its shape is keyed by it */
	uint64_t skel_hash;
	char skel[SQL_DIGEST_MAX];
	struct jconst {                      /* JSON strings of our own static names */
		const char *name;
		json_t *j;
	} jconst[64];
	struct stmt_slot *frags;             /* TRACER_FRAG_SLOTS statement fragments */
	struct exec_slot *execs;             /* TRACER_EXEC_SLOTS */
	struct shape_slot *shapes;           /* TRACER_SHAPE_SLOTS */
	struct slot_index *frag_ix;          /* which slot holds which key; all six made */
	struct slot_index *exec_ix;          /* on first use (cache_ready) */
	struct slot_index *shape_ix;
	struct jfrag *outcome[3][2][TRACER_OUTCOME_MAX]; /* verdict x rows/affected x count */
};

struct sql_prepare {
	char *name;
	char *sql;
	size_t len;
	struct sql_prepare *next;
};

struct tracer_conn {
	struct tracer *t;
	uint64_t id;
	char client[80];
	char client_host[80];                /* client without the port: a metric label */
	struct sql_prepare *preps;           /* SQL-level PREPARE name -> text */
	unsigned npreps;
	struct jfrag *frag;                  /* session, client, user, target, source */
	char *frag_user;                     /* ... as of this user and target */
	char *frag_target;                   /* (NULL: target unknown) */
};

/* Statement text as the client sent it. */
struct stmt_text {
	const char *sql;
	size_t n;
};

/* One statement of a command, between the command and its result. */
struct tstmt {
	struct jbuf head;     /* the members proper to this run known at the command: sql... */
	bool traced;          /* a record is to be written (head is set) */
	struct jfrag *conn_f; /* the members of its session and of its shape (refs) */
	struct jfrag *stmt_f;
	uint8_t cls;          /* enum sql_class */
	bool objected;        /* the guard did not say allow */
	bool blocked;
	bool done;            /* written */
	uint64_t rows;        /* CALL: rows of the result sets before its final OK */
};

struct tcmd {
	struct tracer *t;
	struct tcmd *next_spare;  /* in t->spare_cmds */
	struct tracer_conn *conn; /* outlives the command: see tracer_conn_free */
	uint8_t cmd;
	uint64_t start_us;
	unsigned n;            /* statements */
	unsigned next;         /* statement the next result belongs to */
	char block_reason[512];
	struct tstmt s[];
};

/* What a statement is analysed with: the session state in force when it runs. */
struct stmt_ctx {
	const char *command;       /* "query", "prepare", "execute", "init_db" */
	const char *target_raw;    /* "" = none */
	bool target_known;
	bool in_tx;
	unsigned lex_flags;
	const char *user;
};

/* Counters are written by the tracer's own thread only and read by the admin pages on
 * the main thread: relaxed atomic stores and loads (plain moves on x86), no lock. */
static inline void
count_inc(uint64_t *c)
{
	__atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

/* ---- tracer_cache.c ------------------------------------------------------------- */

/* Allocates a cache's slots and their index on first use. */
bool tracer_slots_ready(void *slotsp, struct slot_index **ix, unsigned cap, size_t size);

/* Frees the analyses kept by shape and by prepared text. */
void tracer_caches_free(struct tracer *t);

/* Classifies sql[0..n) into t->st, with its digest in t->digest (a kept shape's, or made
 * now and kept); t->memo is that shape's route memo, NULL when it is not kept. */
void tracer_classify(struct tracer *t, const struct stmt_ctx *x, const char *sql, size_t n);

/* t->memo restored into t->res when it holds this rules snapshot, target and transaction
 * state (NULL: resolve); tracer_memo_keep makes it hold the resolution just made. */
struct route_memo *tracer_memo_restore(struct tracer *t, const struct stmt_ctx *x,
				       uint64_t tgt_epoch);
struct route_memo *tracer_memo_keep(struct tracer *t, const struct stmt_ctx *x,
				    uint64_t tgt_epoch);

/* A kept analysis back into t (digest, classification, memo), as making it would leave it. */
void tracer_analysis_restore(struct tracer *t, struct analysis *a);

/* Prepared texts (COM_STMT_EXECUTE): the analysis of a text kept by the text itself. */
uint64_t tracer_exec_key(const char *text, size_t n, unsigned lex_flags);
struct exec_slot *tracer_exec_find(struct tracer *t, uint64_t key, const char *text, size_t n,
				   unsigned lex_flags);
void tracer_exec_keep(struct tracer *t, uint64_t key, const char *text, size_t n,
		      unsigned lex_flags, size_t start, size_t slen);
bool tracer_exec_cacheable(const struct sql_stmt *st);

#endif
