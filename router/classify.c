/* router/classify.c: statement class and table references, from the code tokens.
 *
 * Statement-specific prologues (INSERT INTO t, DROP TABLE a, b, ...) read the head of a
 * statement; everything else goes through one generic scanner that knows where table
 * lists start (FROM, JOIN, a comma inside a FROM list, UPDATE's table list), follows
 * parentheses (subqueries, derived tables), CTE definitions and UNION blocks, and adds
 * the implicit `dual` of a FROM-less SELECT.  Each token is looked at a bounded number
 * of times, so the whole pass is linear in the text. */
#include "router/classify.h"

#include <string.h>
#include <strings.h>

#include "router/sql_lex.h"

#define CP_DEPTH 64      /* tracked parenthesis depth; deeper still scans, flagged */
#define CP_TARGETS 16    /* DELETE a, b FROM ... targets remembered for role mapping */
#define CP_CTES 32       /* CTE names remembered per statement */
#define CP_LEVELS 3      /* PREPARE inside PREPARE ... nesting of inner texts */
#define CP_PREPARE_BUF 8192

struct cp {
	struct sql_lex lx;
	const char *z;
	struct sql_stmt *st;
	struct sql_tok la;
	bool has_la;
	unsigned level;
	unsigned depth;
	uint8_t in_from[CP_DEPTH];
	uint8_t pending_dual[CP_DEPTH];
	uint8_t in_with[CP_DEPTH];
	uint8_t query[CP_DEPTH];  /* a SELECT started at this depth: FROM lists tables */
	bool expect;          /* the next token may be a table factor */
	bool cte_next;        /* the next identifier is a CTE name */
	bool like_table;      /* CREATE TABLE: LIKE introduces a table */
	uint8_t role0;        /* role of depth-0 FROM-list tables */
	bool delete_mode;     /* DELETE FROM a USING ...: USING switches to the read list */
	uint64_t depth0_refs; /* bit i: tables[i] was recorded at depth 0 */
	unsigned ntargets;
	struct sql_name targets[CP_TARGETS];
	unsigned nctes;
	struct sql_name ctes[CP_CTES];
};

static const char *const class_names[SQL_CLASS_COUNT] = {
    "unparsed", "select",   "insert",    "replace",  "update", "delete",   "load",
    "create",   "alter",    "drop",      "truncate", "rename", "set",      "use",
    "begin",    "commit",   "rollback",  "savepoint", "xa",    "show",     "explain",
    "call",     "lock",     "unlock",    "prepare",  "execute", "deallocate", "other"};

enum sql_tx_effect
sql_stmt_tx_effect(const struct sql_stmt *st)
{
	switch ((enum sql_class)st->cls) {
	case SQL_CLASS_BEGIN:
		return SQL_TX_BEGIN;
	case SQL_CLASS_COMMIT:
	case SQL_CLASS_ROLLBACK:
	case SQL_CLASS_CREATE:
	case SQL_CLASS_ALTER:
	case SQL_CLASS_DROP:
	case SQL_CLASS_TRUNCATE:
	case SQL_CLASS_RENAME:
		return SQL_TX_END;
	default:
		return SQL_TX_NONE;
	}
}

const char *
sql_class_name(enum sql_class cls)
{
	return (unsigned)cls < SQL_CLASS_COUNT ? class_names[cls] : "unparsed";
}

const char *
sql_role_name(enum sql_role role)
{
	return role == SQL_ROLE_WRITE ? "write" : role == SQL_ROLE_DDL ? "ddl" : "read";
}

const char *
sql_stmt_str(const struct sql_stmt *st, struct sql_name nm)
{
	if (nm.len == 0 || (size_t)nm.off + nm.len >= SQL_STMT_NAMEBUF)
		return "";
	return st->names + nm.off;
}

/* --- tokens ------------------------------------------------------------------- */

static bool
next(struct cp *p, struct sql_tok *t)
{
	if (p->has_la) {
		*t = p->la;
		p->has_la = false;
		return true;
	}
	if (!sql_lex_next_code(&p->lx, t))
		return false;
	if (t->flags & SQL_TOKF_UNTERMINATED)
		p->st->flags |= SQL_STMT_UNTERMINATED;
	return true;
}

static const struct sql_tok *
peek(struct cp *p)
{
	if (!p->has_la) {
		if (!next(p, &p->la))
			p->la.type = SQL_TK_EOF;
		p->has_la = true;
	}
	return &p->la;
}

static void
unread(struct cp *p, const struct sql_tok *t)
{
	p->la = *t;
	p->has_la = true;
}

static bool
is_kw(const struct sql_tok *t, enum sql_kw kw)
{
	return t->type == SQL_TK_IDENT && t->kw == kw;
}

static bool
peek_kw(struct cp *p, enum sql_kw kw)
{
	return is_kw(peek(p), kw);
}

/* Consumes the next token if it is keyword kw. */
static bool
accept_kw(struct cp *p, enum sql_kw kw)
{
	struct sql_tok t;

	if (!peek_kw(p, kw))
		return false;
	return next(p, &t);
}

static bool
tok_text_is(const struct cp *p, const struct sql_tok *t, const char *word)
{
	return t->type == SQL_TK_IDENT && strlen(word) == t->len &&
	       strncasecmp(p->z + t->off, word, t->len) == 0;
}

/* MySQL reserved words among our keywords: never a table name or alias unquoted. */
static bool
kw_reserved(unsigned kw)
{
	switch (kw) {
	case SQL_KW_NONE: case SQL_KW_AFTER: case SQL_KW_ALGORITHM: case SQL_KW_BEGIN:
	case SQL_KW_COLUMNS: case SQL_KW_COMMIT: case SQL_KW_CONCURRENT: case SQL_KW_DATA:
	case SQL_KW_DEALLOCATE: case SQL_KW_DEFINER: case SQL_KW_DO: case SQL_KW_DUPLICATE:
	case SQL_KW_EXECUTE: case SQL_KW_FIELDS: case SQL_KW_FLUSH: case SQL_KW_FORMAT:
	case SQL_KW_FULL: case SQL_KW_HANDLER: case SQL_KW_INDEXES: case SQL_KW_LOCAL:
	case SQL_KW_PLAN: case SQL_KW_PREPARE: case SQL_KW_QUERIES: case SQL_KW_QUICK:
	case SQL_KW_ROLLBACK: case SQL_KW_SAVEPOINT: case SQL_KW_SQL_NO_CACHE: case SQL_KW_START:
	case SQL_KW_TEMPORARY: case SQL_KW_TRACE: case SQL_KW_TRANSACTION: case SQL_KW_TRUNCATE:
	case SQL_KW_VEXPLAIN: case SQL_KW_VIEW: case SQL_KW_XA: case SQL_KW_TABLES:
	case SQL_KW_SCHEMAS: case SQL_KW_DATABASES:
		return false;
	default:
		return true;
	}
}

/* An identifier usable as a table/alias name here. */
static bool
is_name(const struct sql_tok *t)
{
	return t->type == SQL_TK_QIDENT || (t->type == SQL_TK_IDENT && !kw_reserved(t->kw));
}

/* --- names and refs ------------------------------------------------------------ */

static struct sql_name
store_bytes(struct sql_stmt *st, const char *s, size_t n)
{
	struct sql_name nm = {0, 0};
	size_t room = SQL_STMT_NAMEBUF - st->names_used;

	if (n + 1 > room || n > UINT16_MAX) {
		st->flags |= SQL_STMT_NAMES_OVERFLOW;
		return nm;
	}
	memcpy(st->names + st->names_used, s, n);
	st->names[st->names_used + n] = '\0';
	nm.off = st->names_used;
	nm.len = (uint16_t)n;
	st->names_used = (uint16_t)(st->names_used + n + 1);
	return nm;
}

static struct sql_name
store_tok(struct cp *p, const struct sql_tok *t)
{
	struct sql_stmt *st = p->st;
	struct sql_name nm = {0, 0};
	size_t room = SQL_STMT_NAMEBUF - st->names_used, n;

	if (t->type == SQL_TK_IDENT)
		return store_bytes(st, p->z + t->off, t->len);
	n = sql_tok_value(p->z, t, p->lx.flags, st->names + st->names_used, room);
	if (n + 1 > room) {
		st->flags |= SQL_STMT_NAMES_OVERFLOW;
		return nm;
	}
	nm.off = st->names_used;
	nm.len = (uint16_t)n;
	st->names_used = (uint16_t)(st->names_used + n + 1);
	return nm;
}

static bool
name_eq(const struct sql_stmt *st, struct sql_name a, struct sql_name b)
{
	return a.len == b.len && memcmp(st->names + a.off, st->names + b.off, a.len) == 0;
}

static bool
name_is(const struct sql_stmt *st, struct sql_name a, const char *lit)
{
	return a.len == strlen(lit) && memcmp(st->names + a.off, lit, a.len) == 0;
}

static bool
is_cte(const struct cp *p, struct sql_name nm)
{
	unsigned i;

	for (i = 0; i < p->nctes; i++)
		if (name_eq(p->st, p->ctes[i], nm))
			return true;
	return false;
}

static int
add_ref(struct cp *p, struct sql_name qual, struct sql_name name, enum sql_role role,
	uint8_t flags)
{
	struct sql_stmt *st = p->st;
	struct sql_tref *r;

	if (name.len == 0)
		return -1;
	if (qual.len == 0 && is_cte(p, name))
		return -1;
	if (st->ntables >= SQL_STMT_MAX_TABLES) {
		st->flags |= SQL_STMT_TABLES_OVERFLOW;
		return -1;
	}
	r = &st->tables[st->ntables];
	memset(r, 0, sizeof(*r));
	r->qual = qual;
	r->name = name;
	r->role = (uint8_t)role;
	r->flags = flags;
	if (p->depth == 0)
		p->depth0_refs |= 1ULL << st->ntables;
	return st->ntables++;
}

/* Reads [qual .] name starting with token t (already consumed, a name). */
static void
read_qname(struct cp *p, const struct sql_tok *t, struct sql_name *qual, struct sql_name *name)
{
	struct sql_tok u;

	qual->off = qual->len = 0;
	*name = store_tok(p, t);
	if (peek(p)->type != SQL_TK_DOT)
		return;
	next(p, &u);
	if (!next(p, &u))
		return;
	if (u.type == SQL_TK_IDENT || u.type == SQL_TK_QIDENT) {
		*qual = *name;
		*name = store_tok(p, &u);
	} else {
		unread(p, &u); /* e.g. "a.*": not a qualified table */
	}
}

/* Reads a table name (qualified or not) from the next token and records it. */
static int
read_table(struct cp *p, enum sql_role role, uint8_t flags)
{
	struct sql_tok t;
	struct sql_name q, nm;

	if (!next(p, &t))
		return -1;
	if (!is_name(&t)) {
		unread(p, &t);
		return -1;
	}
	read_qname(p, &t, &q, &nm);
	return add_ref(p, q, nm, role, flags);
}

/* Optional "[AS] alias" after a table factor. */
static void
read_alias(struct cp *p, int ref)
{
	struct sql_tok t;

	if (accept_kw(p, SQL_KW_AS)) {
		if (!next(p, &t))
			return;
		if (t.type != SQL_TK_IDENT && t.type != SQL_TK_QIDENT && t.type != SQL_TK_STRING) {
			unread(p, &t);
			return;
		}
	} else if (is_name(peek(p))) {
		next(p, &t);
	} else {
		return;
	}
	if (ref >= 0)
		p->st->tables[ref].alias = store_tok(p, &t);
}

/* Skips one balanced "( ... )" group if the next token opens one. */
static void
skip_parens(struct cp *p)
{
	struct sql_tok t;
	size_t depth = 0;

	if (peek(p)->type != SQL_TK_LPAREN)
		return;
	while (next(p, &t)) {
		if (t.type == SQL_TK_LPAREN)
			depth++;
		else if (t.type == SQL_TK_RPAREN && --depth == 0)
			return;
	}
}

static void
add_dual(struct cp *p)
{
	struct sql_stmt *st = p->st;
	struct sql_name q = {0, 0}, nm;
	unsigned i;
	unsigned saved = p->depth;

	for (i = 0; i < st->ntables; i++)
		if (st->tables[i].qual.len == 0 && name_is(st, st->tables[i].name, "dual"))
			return;
	nm = store_bytes(st, "dual", 4);
	p->depth = 1; /* never a DELETE target */
	add_ref(p, q, nm, SQL_ROLE_READ, SQL_TREF_IMPLICIT);
	p->depth = saved;
}

/* --- the generic scanner ------------------------------------------------------- */

static unsigned
dslot(struct cp *p)
{
	if (p->depth >= CP_DEPTH) {
		p->st->flags |= SQL_STMT_TOO_DEEP;
		return CP_DEPTH - 1;
	}
	return p->depth;
}

static void
push_level(struct cp *p, bool table_list)
{
	unsigned d;

	p->depth++;
	d = dslot(p);
	p->in_from[d] = table_list;
	p->pending_dual[d] = 0;
	p->in_with[d] = 0;
	p->query[d] = table_list;
}

static void
finish_block(struct cp *p)
{
	unsigned d = dslot(p);

	if (p->pending_dual[d])
		add_dual(p);
	p->pending_dual[d] = 0;
}

/* Token t follows FROM, JOIN or a FROM-list comma.  True if consumed here. */
static bool
table_factor(struct cp *p, const struct sql_tok *t)
{
	struct sql_name q, nm;
	int ref;

	if (t->type == SQL_TK_LPAREN) {
		push_level(p, true); /* derived table or parenthesised join */
		return true;         /* expect stays set */
	}
	if (is_kw(t, SQL_KW_LATERAL))
		return true;
	p->expect = false;
	if (!is_name(t) && !is_kw(t, SQL_KW_DUAL))
		return false;
	read_qname(p, t, &q, &nm);
	if (peek(p)->type == SQL_TK_LPAREN)
		return true; /* table function such as JSON_TABLE(...) */
	ref = add_ref(p, q, nm, p->depth == 0 ? (enum sql_role)p->role0 : SQL_ROLE_READ, 0);
	if (peek_kw(p, SQL_KW_PARTITION)) {
		struct sql_tok u;

		next(p, &u);
		skip_parens(p);
	}
	read_alias(p, ref);
	return true;
}

static void
delete_using(struct cp *p)
{
	struct sql_stmt *st = p->st;
	unsigned i;

	/* DELETE FROM a, b USING ...: what came after FROM are the targets, not tables */
	p->delete_mode = false;
	for (i = 0; i < st->ntables; i++) {
		if (p->ntargets < CP_TARGETS)
			p->targets[p->ntargets++] = st->tables[i].name;
	}
	st->ntables = 0;
	p->depth0_refs = 0;
	p->role0 = SQL_ROLE_READ;
	p->in_from[0] = 1;
	p->expect = true;
}

static void
scan_keyword(struct cp *p, const struct sql_tok *t)
{
	unsigned d = dslot(p);

	switch (t->kw) {
	case SQL_KW_FROM:
		/* only a query's FROM lists tables: not EXTRACT(x FROM d), TRIM(.. FROM c) */
		if (!p->query[d])
			break;
		p->in_from[d] = 1;
		p->pending_dual[d] = 0;
		p->expect = true;
		break;
	case SQL_KW_JOIN:
	case SQL_KW_STRAIGHT_JOIN:
		/* SELECT STRAIGHT_JOIN a FROM ...: a modifier, not a join */
		if (!p->in_from[d])
			break;
		p->expect = true;
		break;
	case SQL_KW_SELECT:
		p->pending_dual[d] = 1;
		p->in_from[d] = 0;
		p->in_with[d] = 0;
		p->query[d] = 1;
		p->like_table = false;
		break;
	case SQL_KW_UNION:
	case SQL_KW_EXCEPT:
	case SQL_KW_INTERSECT:
		finish_block(p);
		p->in_from[d] = 0;
		break;
	case SQL_KW_USING:
		if (p->delete_mode && p->depth == 0)
			delete_using(p);
		break;
	case SQL_KW_LIKE:
		if (p->like_table)
			p->expect = true, p->role0 = SQL_ROLE_READ;
		break;
	case SQL_KW_WITH:
		if (tok_text_is(p, peek(p), "ROLLUP"))
			break; /* GROUP BY ... WITH ROLLUP */
		p->in_with[d] = 1;
		p->cte_next = true;
		break;
	case SQL_KW_WHERE: case SQL_KW_GROUP: case SQL_KW_HAVING: case SQL_KW_ORDER:
	case SQL_KW_LIMIT: case SQL_KW_WINDOW: case SQL_KW_SET: case SQL_KW_VALUES:
	case SQL_KW_INTO: case SQL_KW_FOR: case SQL_KW_LOCK: case SQL_KW_UPDATE:
		p->in_from[d] = 0;
		p->delete_mode = false;
		break;
	default:
		break;
	}
}

/* Scans to the end of the text, or, when called just after a '(' was pushed with
 * until_close, to the matching ')'. */
static void
scan_generic(struct cp *p, bool until_close)
{
	unsigned base = p->depth;
	struct sql_tok t;

	while (next(p, &t)) {
		if (p->expect && table_factor(p, &t))
			continue;
		p->expect = false;
		switch (t.type) {
		case SQL_TK_LPAREN:
			push_level(p, false);
			break;
		case SQL_TK_RPAREN:
			if (p->depth == 0)
				break;
			finish_block(p);
			p->depth--;
			if (until_close && p->depth < base)
				return;
			break;
		case SQL_TK_COMMA:
			if (p->in_with[dslot(p)])
				p->cte_next = true;
			else if (p->in_from[dslot(p)])
				p->expect = true;
			break;
		case SQL_TK_IDENT:
		case SQL_TK_QIDENT:
			if (p->cte_next && !is_kw(&t, SQL_KW_RECURSIVE) && is_name(&t)) {
				p->cte_next = false;
				if (p->nctes < CP_CTES)
					p->ctes[p->nctes++] = store_tok(p, &t);
			} else if (t.type == SQL_TK_IDENT) {
				scan_keyword(p, &t);
			}
			break;
		default:
			break;
		}
	}
	finish_block(p);
}

/* --- statement prologues -------------------------------------------------------- */

static void dispatch(struct cp *p, const struct sql_tok *t);

static void
st_insert(struct cp *p)
{
	while (accept_kw(p, SQL_KW_LOW_PRIORITY) || accept_kw(p, SQL_KW_DELAYED) ||
	       accept_kw(p, SQL_KW_HIGH_PRIORITY) || accept_kw(p, SQL_KW_IGNORE))
		;
	accept_kw(p, SQL_KW_INTO);
	read_table(p, SQL_ROLE_WRITE, 0);
	scan_generic(p, false);
}

static void
st_update(struct cp *p)
{
	while (accept_kw(p, SQL_KW_LOW_PRIORITY) || accept_kw(p, SQL_KW_IGNORE))
		;
	p->in_from[0] = 1;
	p->query[0] = 1;
	p->expect = true;
	p->role0 = SQL_ROLE_WRITE;
	scan_generic(p, false);
}

/* DELETE a, b FROM ... : map targets (names or aliases) onto the depth-0 FROM tables. */
static void
map_delete_targets(struct cp *p)
{
	struct sql_stmt *st = p->st;
	unsigned i, k;

	for (i = 0; i < st->ntables && i < 64; i++) {
		struct sql_tref *r = &st->tables[i];

		if (!(p->depth0_refs & (1ULL << i)))
			continue;
		for (k = 0; k < p->ntargets; k++) {
			struct sql_name key = r->alias.len ? r->alias : r->name;

			if (name_eq(st, key, p->targets[k]))
				r->role = SQL_ROLE_WRITE;
		}
	}
}

static void
st_delete(struct cp *p)
{
	struct sql_tok t;

	while (accept_kw(p, SQL_KW_LOW_PRIORITY) || accept_kw(p, SQL_KW_QUICK) ||
	       accept_kw(p, SQL_KW_IGNORE))
		;
	p->query[0] = 1;
	if (accept_kw(p, SQL_KW_FROM)) {
		p->in_from[0] = 1;
		p->expect = true;
		p->role0 = SQL_ROLE_WRITE;
		p->delete_mode = true;
		scan_generic(p, false);
	} else {
		/* DELETE a, b.* FROM ...: targets until FROM */
		while (next(p, &t) && !is_kw(&t, SQL_KW_FROM)) {
			struct sql_name q, nm;

			if (!is_name(&t))
				continue;
			read_qname(p, &t, &q, &nm);
			if (p->ntargets < CP_TARGETS)
				p->targets[p->ntargets++] = nm;
		}
		p->in_from[0] = 1;
		p->expect = true;
		p->role0 = SQL_ROLE_READ;
		scan_generic(p, false);
	}
	map_delete_targets(p);
}

static void
st_load(struct cp *p)
{
	struct sql_tok t;

	while (next(p, &t)) {
		if (is_kw(&t, SQL_KW_INTO) && accept_kw(p, SQL_KW_TABLE)) {
			read_table(p, SQL_ROLE_WRITE, 0);
			break;
		}
	}
	while (next(p, &t))
		;
}

/* Skips "IF [NOT] EXISTS", setting the matching flag. */
static void
skip_if_exists(struct cp *p)
{
	if (!accept_kw(p, SQL_KW_IF))
		return;
	if (accept_kw(p, SQL_KW_NOT))
		p->st->flags |= SQL_STMT_IF_NOT_EXISTS;
	else
		p->st->flags |= SQL_STMT_IF_EXISTS;
	accept_kw(p, SQL_KW_EXISTS);
}

static void
read_db_name(struct cp *p)
{
	struct sql_tok t;

	p->st->flags |= SQL_STMT_DDL_DATABASE;
	skip_if_exists(p);
	if (next(p, &t) && (t.type == SQL_TK_IDENT || t.type == SQL_TK_QIDENT))
		p->st->db = store_tok(p, &t);
}

/* CREATE/ALTER view prefix: [OR REPLACE] [ALGORITHM = x] [DEFINER = u] [SQL SECURITY x]
 * and other modifiers up to the object keyword; returns that keyword's token. */
static bool
skip_ddl_modifiers(struct cp *p, struct sql_tok *t)
{
	while (next(p, t)) {
		if (t->type != SQL_TK_IDENT)
			return true;
		switch (t->kw) {
		case SQL_KW_TABLE: case SQL_KW_VIEW: case SQL_KW_INDEX: case SQL_KW_DATABASE:
		case SQL_KW_SCHEMA: case SQL_KW_TRIGGER: case SQL_KW_PROCEDURE:
		case SQL_KW_FUNCTION:
			return true;
		case SQL_KW_TEMPORARY:
			p->st->flags |= SQL_STMT_TEMPORARY;
			break;
		case SQL_KW_ALGORITHM:
		case SQL_KW_DEFINER:
			if (peek(p)->type == SQL_TK_OP)
				next(p, t);
			next(p, t); /* the value; a user@host value lexes as ident + var */
			if (peek(p)->type == SQL_TK_VAR)
				next(p, t);
			break;
		default:
			break; /* OR REPLACE, UNIQUE, SQL SECURITY x, ONLINE, ... */
		}
	}
	t->type = SQL_TK_EOF;
	return false;
}

static void
st_create(struct cp *p)
{
	struct sql_tok t;

	if (!skip_ddl_modifiers(p, &t))
		return;
	switch (t.kw) {
	case SQL_KW_TABLE:
		p->st->flags |= SQL_STMT_DDL_TABLE;
		skip_if_exists(p);
		read_table(p, SQL_ROLE_DDL, 0);
		p->like_table = true;
		p->role0 = SQL_ROLE_READ;
		scan_generic(p, false);
		break;
	case SQL_KW_VIEW:
		p->st->flags |= SQL_STMT_DDL_VIEW;
		read_table(p, SQL_ROLE_DDL, 0);
		scan_generic(p, false);
		break;
	case SQL_KW_INDEX:
		p->st->flags |= SQL_STMT_DDL_INDEX;
		while (next(p, &t) && !is_kw(&t, SQL_KW_ON))
			;
		read_table(p, SQL_ROLE_DDL, 0);
		break;
	case SQL_KW_DATABASE:
	case SQL_KW_SCHEMA:
		read_db_name(p);
		break;
	case SQL_KW_TRIGGER:
		while (next(p, &t) && !is_kw(&t, SQL_KW_ON))
			;
		read_table(p, SQL_ROLE_DDL, 0);
		break;
	default:
		break;
	}
	while (next(p, &t))
		;
}

/* ALTER TABLE t <specs>: RENAME [TO|AS] x, DROP ... at the top level. */
static void
alter_table_specs(struct cp *p)
{
	struct sql_tok t;
	unsigned depth = 0;

	while (next(p, &t)) {
		if (t.type == SQL_TK_LPAREN)
			depth++;
		else if (t.type == SQL_TK_RPAREN && depth > 0)
			depth--;
		if (depth > 0 || t.type != SQL_TK_IDENT)
			continue;
		if (t.kw == SQL_KW_DROP) {
			p->st->flags |= SQL_STMT_ALTER_DROP;
		} else if (t.kw == SQL_KW_RENAME) {
			if (peek_kw(p, SQL_KW_COLUMN) || peek_kw(p, SQL_KW_INDEX) ||
			    peek_kw(p, SQL_KW_KEY))
				continue;
			if (!accept_kw(p, SQL_KW_TO))
				accept_kw(p, SQL_KW_AS);
			p->st->flags |= SQL_STMT_ALTER_RENAME;
			read_table(p, SQL_ROLE_DDL, SQL_TREF_NEW_NAME);
		}
	}
}

static void
st_alter(struct cp *p)
{
	struct sql_tok t;

	if (!skip_ddl_modifiers(p, &t))
		return;
	switch (t.kw) {
	case SQL_KW_TABLE:
		p->st->flags |= SQL_STMT_DDL_TABLE;
		read_table(p, SQL_ROLE_DDL, 0);
		alter_table_specs(p);
		break;
	case SQL_KW_VIEW:
		p->st->flags |= SQL_STMT_DDL_VIEW;
		read_table(p, SQL_ROLE_DDL, 0);
		scan_generic(p, false);
		break;
	case SQL_KW_DATABASE:
	case SQL_KW_SCHEMA:
		if (is_name(peek(p)) && !peek_kw(p, SQL_KW_DEFINER))
			read_db_name(p);
		break;
	default:
		break;
	}
	while (next(p, &t))
		;
}

/* A comma-separated list of table names (DROP TABLE a, b). */
static void
read_table_list(struct cp *p, enum sql_role role)
{
	do {
		if (read_table(p, role, 0) < 0)
			break;
	} while (peek(p)->type == SQL_TK_COMMA && next(p, &p->la) && (p->has_la = false, true));
}

static void
st_drop(struct cp *p)
{
	struct sql_tok t;

	if (accept_kw(p, SQL_KW_TEMPORARY))
		p->st->flags |= SQL_STMT_TEMPORARY;
	if (!next(p, &t))
		return;
	if (is_kw(&t, SQL_KW_TABLE) || is_kw(&t, SQL_KW_TABLES) || is_kw(&t, SQL_KW_VIEW)) {
		p->st->flags |= is_kw(&t, SQL_KW_VIEW) ? SQL_STMT_DDL_VIEW : SQL_STMT_DDL_TABLE;
		skip_if_exists(p);
		read_table_list(p, SQL_ROLE_DDL);
	} else if (is_kw(&t, SQL_KW_INDEX)) {
		p->st->flags |= SQL_STMT_DDL_INDEX;
		while (next(p, &t) && !is_kw(&t, SQL_KW_ON))
			;
		read_table(p, SQL_ROLE_DDL, 0);
	} else if (is_kw(&t, SQL_KW_DATABASE) || is_kw(&t, SQL_KW_SCHEMA)) {
		read_db_name(p);
	} else if (is_kw(&t, SQL_KW_PREPARE)) {
		p->st->cls = SQL_CLASS_DEALLOCATE;
		if (next(p, &t))
			p->st->object = store_tok(p, &t);
	}
	while (next(p, &t))
		;
}

static void
st_rename(struct cp *p)
{
	struct sql_tok t;

	if (!accept_kw(p, SQL_KW_TABLE) && !accept_kw(p, SQL_KW_TABLES)) {
		while (next(p, &t))
			;
		return;
	}
	p->st->flags |= SQL_STMT_DDL_TABLE;
	for (;;) {
		if (read_table(p, SQL_ROLE_DDL, 0) < 0 || !accept_kw(p, SQL_KW_TO))
			break;
		read_table(p, SQL_ROLE_DDL, SQL_TREF_NEW_NAME);
		if (peek(p)->type != SQL_TK_COMMA)
			break;
		next(p, &t);
	}
	while (next(p, &t))
		;
}

/* SHOW [FULL] COLUMNS|FIELDS|INDEX|INDEXES|KEYS FROM|IN t [FROM|IN db] */
static void
show_columns(struct cp *p)
{
	struct sql_tok t;
	int ref;

	if (!accept_kw(p, SQL_KW_FROM) && !accept_kw(p, SQL_KW_IN))
		return;
	ref = read_table(p, SQL_ROLE_READ, 0);
	if (ref >= 0 && (accept_kw(p, SQL_KW_FROM) || accept_kw(p, SQL_KW_IN)) && next(p, &t) &&
	    (t.type == SQL_TK_IDENT || t.type == SQL_TK_QIDENT) &&
	    p->st->tables[ref].qual.len == 0)
		p->st->tables[ref].qual = store_tok(p, &t);
}

static void
st_show(struct cp *p)
{
	struct sql_tok t;

	while (next(p, &t)) {
		if (is_kw(&t, SQL_KW_CREATE)) {
			if (accept_kw(p, SQL_KW_TABLE) || accept_kw(p, SQL_KW_VIEW))
				read_table(p, SQL_ROLE_READ, 0);
			break;
		}
		if (is_kw(&t, SQL_KW_COLUMNS) || is_kw(&t, SQL_KW_FIELDS) ||
		    is_kw(&t, SQL_KW_INDEX) || is_kw(&t, SQL_KW_INDEXES) || is_kw(&t, SQL_KW_KEYS)) {
			show_columns(p);
			break;
		}
		if ((is_kw(&t, SQL_KW_FROM) || is_kw(&t, SQL_KW_IN)) && next(p, &t)) {
			if (t.type == SQL_TK_IDENT || t.type == SQL_TK_QIDENT)
				p->st->db = store_tok(p, &t);
			break;
		}
		if (!is_kw(&t, SQL_KW_FULL) && t.type == SQL_TK_IDENT &&
		    !tok_text_is(p, &t, "EXTENDED") && !is_kw(&t, SQL_KW_TABLE) &&
		    !is_kw(&t, SQL_KW_TABLES) && !tok_text_is(p, &t, "STATUS") &&
		    !tok_text_is(p, &t, "OPEN") && !tok_text_is(p, &t, "TRIGGERS") &&
		    !tok_text_is(p, &t, "EVENTS"))
			break;
	}
	while (next(p, &t))
		;
}

static bool
starts_statement(const struct sql_tok *t)
{
	switch (t->type == SQL_TK_IDENT ? t->kw : SQL_KW_NONE) {
	case SQL_KW_SELECT: case SQL_KW_INSERT: case SQL_KW_UPDATE: case SQL_KW_DELETE:
	case SQL_KW_REPLACE: case SQL_KW_WITH: case SQL_KW_TABLE: case SQL_KW_VALUES:
	case SQL_KW_CREATE: case SQL_KW_ALTER: case SQL_KW_DROP: case SQL_KW_TRUNCATE:
	case SQL_KW_RENAME: case SQL_KW_SHOW: case SQL_KW_LOAD: case SQL_KW_CALL:
		return true;
	default:
		return t->type == SQL_TK_LPAREN;
	}
}

/* The inner statement of EXPLAIN/VEXPLAIN: classified in place; returns its class. */
static uint8_t
inner_statement(struct cp *p)
{
	struct sql_tok t;

	if (!next(p, &t))
		return SQL_CLASS_UNPARSED;
	dispatch(p, &t);
	return p->st->cls;
}

static void
st_explain(struct cp *p)
{
	struct sql_tok t;

	p->st->cls = SQL_CLASS_EXPLAIN;
	while (next(p, &t)) {
		if (starts_statement(&t)) {
			unread(p, &t);
			p->st->inner_cls = inner_statement(p);
			p->st->cls = SQL_CLASS_EXPLAIN;
			p->st->flags |= SQL_STMT_EXPLAIN_STMT;
			return;
		}
		if (is_kw(&t, SQL_KW_FORMAT)) {
			if (peek(p)->type == SQL_TK_OP)
				next(p, &t);
			next(p, &t);
			continue;
		}
		if (is_kw(&t, SQL_KW_ANALYZE) ||
		    tok_text_is(p, &t, "EXTENDED") || tok_text_is(p, &t, "PARTITIONS") ||
		    t.type == SQL_TK_OP || is_kw(&t, SQL_KW_FOR))
			continue;
		if (is_name(&t) && p->st->ntables == 0) {
			struct sql_name q, nm;

			read_qname(p, &t, &q, &nm); /* DESCRIBE tbl [col] */
			add_ref(p, q, nm, SQL_ROLE_READ, 0);
		}
		break;
	}
	while (next(p, &t))
		;
}

static void
st_vexplain(struct cp *p)
{
	bool exec = false;
	struct sql_tok t;

	if (accept_kw(p, SQL_KW_QUERIES) || accept_kw(p, SQL_KW_ALL) || accept_kw(p, SQL_KW_TRACE))
		exec = true;
	else if (!accept_kw(p, SQL_KW_PLAN))
		accept_kw(p, SQL_KW_KEYS);
	if (accept_kw(p, SQL_KW_FORMAT)) {
		if (peek(p)->type == SQL_TK_OP)
			next(p, &t);
		next(p, &t);
	}
	p->st->inner_cls = inner_statement(p);
	if (exec) {
		p->st->cls = p->st->inner_cls;
		p->st->flags |= SQL_STMT_VEXPLAIN_EXEC;
	} else {
		p->st->cls = SQL_CLASS_EXPLAIN;
		p->st->flags |= SQL_STMT_VEXPLAIN_PLAN;
	}
}

static void classify_text(const char *sql, size_t n, unsigned flags, unsigned level,
			  struct sql_stmt *st);

static void
st_prepare(struct cp *p)
{
	struct sql_tok t;
	char buf[CP_PREPARE_BUF];
	size_t vn;

	if (next(p, &t))
		p->st->object = store_tok(p, &t);
	if (!accept_kw(p, SQL_KW_FROM) || !next(p, &t) || t.type != SQL_TK_STRING ||
	    p->level + 1 >= CP_LEVELS) {
		p->st->flags |= SQL_STMT_PREPARE_UNKNOWN;
		return;
	}
	vn = sql_tok_value(p->z, &t, p->lx.flags, buf, sizeof(buf));
	if (vn >= sizeof(buf)) {
		p->st->flags |= SQL_STMT_PREPARE_UNKNOWN;
		return;
	}
	classify_text(buf, vn, p->lx.flags, p->level + 1, p->st);
	p->st->inner_cls = p->st->cls;
	p->st->cls = SQL_CLASS_PREPARE;
	p->st->reason = NULL;
	p->st->flags |= SQL_STMT_PREPARE_TEXT;
}

static void
st_lock(struct cp *p)
{
	struct sql_tok t;
	int ref = -1;

	if (!accept_kw(p, SQL_KW_TABLES) && !accept_kw(p, SQL_KW_TABLE))
		return;
	ref = read_table(p, SQL_ROLE_READ, 0);
	read_alias(p, ref);
	while (next(p, &t)) {
		if (is_kw(&t, SQL_KW_WRITE) && ref >= 0)
			p->st->tables[ref].role = SQL_ROLE_WRITE;
		if (t.type == SQL_TK_COMMA) {
			ref = read_table(p, SQL_ROLE_READ, 0);
			read_alias(p, ref);
		}
	}
}

static void
store_rest(struct cp *p, struct sql_name *dst)
{
	struct sql_tok t;
	size_t start = p->st->names_used;
	bool any = false;

	/* USE target: tokens concatenated, quoted parts unescaped (as sql_use_target) */
	while (next(p, &t) && t.type != SQL_TK_SEMI) {
		struct sql_name nm = store_tok(p, &t);

		if (nm.len == 0 && t.len > 0 && t.type != SQL_TK_QIDENT)
			break;
		/* drop the NUL between pieces so they join */
		if (any && nm.len > 0) {
			memmove(p->st->names + nm.off - 1, p->st->names + nm.off, nm.len + 1u);
			p->st->names_used--;
		}
		any = any || nm.len > 0;
	}
	if (any && p->st->names_used > start) {
		dst->off = (uint16_t)start;
		dst->len = (uint16_t)(p->st->names_used - start - 1);
	}
}

static void
set_class(struct cp *p, enum sql_class cls)
{
	p->st->cls = (uint8_t)cls;
}

static void
dispatch_txn(struct cp *p, const struct sql_tok *t)
{
	struct sql_tok u;

	switch (t->kw) {
	case SQL_KW_BEGIN:
		set_class(p, SQL_CLASS_BEGIN);
		break;
	case SQL_KW_START:
		set_class(p, peek_kw(p, SQL_KW_TRANSACTION) ? SQL_CLASS_BEGIN : SQL_CLASS_OTHER);
		break;
	case SQL_KW_COMMIT:
		set_class(p, SQL_CLASS_COMMIT);
		break;
	case SQL_KW_ROLLBACK:
		set_class(p, SQL_CLASS_ROLLBACK);
		break;
	case SQL_KW_SAVEPOINT:
	case SQL_KW_RELEASE:
		set_class(p, SQL_CLASS_SAVEPOINT);
		accept_kw(p, SQL_KW_SAVEPOINT);
		if (next(p, &u))
			p->st->object = store_tok(p, &u);
		break;
	case SQL_KW_XA:
		set_class(p, SQL_CLASS_XA);
		break;
	default:
		break;
	}
	while (next(p, &u))
		;
}

static void
dispatch_named(struct cp *p, enum sql_class cls, bool scan)
{
	struct sql_tok t;

	set_class(p, cls);
	if (cls != SQL_CLASS_CALL && peek_kw(p, SQL_KW_PREPARE))
		next(p, &t);
	if (next(p, &t) && (t.type == SQL_TK_IDENT || t.type == SQL_TK_QIDENT))
		p->st->object = store_tok(p, &t);
	if (scan)
		scan_generic(p, false);
	while (next(p, &t))
		;
}

static void
dispatch(struct cp *p, const struct sql_tok *t)
{
	if (t->type == SQL_TK_LPAREN) {
		set_class(p, SQL_CLASS_SELECT);
		unread(p, t);
		scan_generic(p, false);
		return;
	}
	switch (t->type == SQL_TK_IDENT ? t->kw : SQL_KW_NONE) {
	case SQL_KW_SELECT:
		set_class(p, SQL_CLASS_SELECT);
		unread(p, t);
		scan_generic(p, false);
		break;
	case SQL_KW_WITH:
	case SQL_KW_VALUES:
		set_class(p, SQL_CLASS_SELECT);
		unread(p, t);
		scan_generic(p, false);
		/* WITH ... UPDATE/DELETE/INSERT: the main statement decides the class */
		break;
	case SQL_KW_TABLE:
		set_class(p, SQL_CLASS_SELECT);
		read_table(p, SQL_ROLE_READ, 0);
		scan_generic(p, false);
		break;
	case SQL_KW_INSERT:
	case SQL_KW_REPLACE:
		set_class(p, t->kw == SQL_KW_INSERT ? SQL_CLASS_INSERT : SQL_CLASS_REPLACE);
		st_insert(p);
		break;
	case SQL_KW_UPDATE:
		set_class(p, SQL_CLASS_UPDATE);
		st_update(p);
		break;
	case SQL_KW_DELETE:
		set_class(p, SQL_CLASS_DELETE);
		st_delete(p);
		break;
	case SQL_KW_LOAD:
		set_class(p, SQL_CLASS_LOAD);
		st_load(p);
		break;
	case SQL_KW_CREATE:
		set_class(p, SQL_CLASS_CREATE);
		st_create(p);
		break;
	case SQL_KW_ALTER:
		set_class(p, SQL_CLASS_ALTER);
		st_alter(p);
		break;
	case SQL_KW_DROP:
		set_class(p, SQL_CLASS_DROP);
		st_drop(p);
		break;
	case SQL_KW_TRUNCATE:
		set_class(p, SQL_CLASS_TRUNCATE);
		p->st->flags |= SQL_STMT_DDL_TABLE;
		accept_kw(p, SQL_KW_TABLE);
		read_table(p, SQL_ROLE_DDL, 0);
		break;
	case SQL_KW_RENAME:
		set_class(p, SQL_CLASS_RENAME);
		st_rename(p);
		break;
	case SQL_KW_SET:
		set_class(p, SQL_CLASS_SET);
		scan_generic(p, false);
		break;
	case SQL_KW_USE:
		set_class(p, SQL_CLASS_USE);
		store_rest(p, &p->st->db);
		break;
	case SQL_KW_BEGIN: case SQL_KW_START: case SQL_KW_COMMIT: case SQL_KW_ROLLBACK:
	case SQL_KW_SAVEPOINT: case SQL_KW_RELEASE: case SQL_KW_XA:
		dispatch_txn(p, t);
		break;
	case SQL_KW_SHOW:
		set_class(p, SQL_CLASS_SHOW);
		st_show(p);
		break;
	case SQL_KW_EXPLAIN: case SQL_KW_DESCRIBE: case SQL_KW_DESC:
		st_explain(p);
		break;
	case SQL_KW_VEXPLAIN:
		st_vexplain(p);
		break;
	case SQL_KW_CALL:
		dispatch_named(p, SQL_CLASS_CALL, true);
		break;
	case SQL_KW_LOCK:
		set_class(p, SQL_CLASS_LOCK);
		st_lock(p);
		break;
	case SQL_KW_UNLOCK:
		set_class(p, SQL_CLASS_UNLOCK);
		break;
	case SQL_KW_PREPARE:
		set_class(p, SQL_CLASS_PREPARE);
		st_prepare(p);
		break;
	case SQL_KW_EXECUTE:
		dispatch_named(p, SQL_CLASS_EXECUTE, false);
		break;
	case SQL_KW_DEALLOCATE:
		dispatch_named(p, SQL_CLASS_DEALLOCATE, false);
		break;
	case SQL_KW_DO:
	case SQL_KW_HANDLER: case SQL_KW_OPTIMIZE: case SQL_KW_ANALYZE: case SQL_KW_REPAIR:
	case SQL_KW_CHECK: case SQL_KW_FLUSH: case SQL_KW_GRANT: case SQL_KW_REVOKE:
	case SQL_KW_KILL:
		set_class(p, SQL_CLASS_OTHER);
		scan_generic(p, false);
		break;
	default:
		set_class(p, SQL_CLASS_UNPARSED);
		p->st->reason = "unrecognized statement start";
		break;
	}
}

/* WITH ... <main statement>: the CTE list is scanned generically; the first statement
 * keyword at depth 0 after it (UPDATE/DELETE/INSERT) re-dispatches. */
static void
dispatch_with(struct cp *p, const struct sql_tok *first)
{
	struct sql_tok t;

	set_class(p, SQL_CLASS_SELECT);
	p->in_with[0] = 1;
	p->cte_next = true;
	(void)first;
	while (next(p, &t)) {
		if (t.type == SQL_TK_LPAREN) {
			push_level(p, false);
			scan_generic(p, true);
			continue;
		}
		if (t.type == SQL_TK_COMMA) {
			p->cte_next = true;
			continue;
		}
		if (p->cte_next && is_name(&t) && !is_kw(&t, SQL_KW_RECURSIVE)) {
			p->cte_next = false;
			if (p->nctes < CP_CTES)
				p->ctes[p->nctes++] = store_tok(p, &t);
			continue;
		}
		if (is_kw(&t, SQL_KW_SELECT) || is_kw(&t, SQL_KW_UPDATE) ||
		    is_kw(&t, SQL_KW_DELETE) || is_kw(&t, SQL_KW_INSERT) ||
		    is_kw(&t, SQL_KW_REPLACE) || is_kw(&t, SQL_KW_TABLE) ||
		    is_kw(&t, SQL_KW_VALUES)) {
			p->in_with[0] = 0;
			dispatch(p, &t);
			return;
		}
	}
}

static void
classify_text(const char *sql, size_t n, unsigned flags, unsigned level, struct sql_stmt *st)
{
	struct cp p;
	struct sql_tok t;

	memset(&p, 0, offsetof(struct cp, targets));
	p.ntargets = 0;
	p.nctes = 0;
	sql_lex_init(&p.lx, sql, n, flags);
	p.z = sql;
	p.st = st;
	p.level = level;
	if (!next(&p, &t)) {
		st->cls = SQL_CLASS_UNPARSED;
		st->reason = "empty statement";
		return;
	}
	if (is_kw(&t, SQL_KW_WITH))
		dispatch_with(&p, &t);
	else
		dispatch(&p, &t);
	while (next(&p, &t))
		;
}

void
sql_classify(const char *sql, size_t n, unsigned lex_flags, struct sql_stmt *st)
{
	st->cls = SQL_CLASS_UNPARSED;
	st->inner_cls = SQL_CLASS_UNPARSED;
	st->ntables = 0;
	st->flags = 0;
	st->reason = NULL;
	st->db.off = st->db.len = 0;
	st->object.off = st->object.len = 0;
	st->names_used = 0;
	st->names[0] = '\0';
	classify_text(sql, n, lex_flags, 0, st);
}
