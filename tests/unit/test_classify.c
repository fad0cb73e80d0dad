/* tests/unit/test_classify.c: classifier corpus (class, flags and every table ref). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/classify.h"
#include "router/sql_lex.h"

/* "class[/inner] role:qual.name[=alias] ..." */
static void
render(const struct sql_stmt *st, char *out, size_t outlen)
{
	size_t w;
	unsigned i;

	w = (size_t)snprintf(out, outlen, "%s", sql_class_name((enum sql_class)st->cls));
	if (st->inner_cls != SQL_CLASS_UNPARSED)
		w += (size_t)snprintf(out + w, outlen - w, "/%s",
				      sql_class_name((enum sql_class)st->inner_cls));
	for (i = 0; i < st->ntables && w < outlen; i++) {
		const struct sql_tref *r = &st->tables[i];

		w += (size_t)snprintf(out + w, outlen - w, " %c%s:%s%s%s%s%s",
				      sql_role_name((enum sql_role)r->role)[0],
				      (r->flags & SQL_TREF_NEW_NAME) ? "+" : "",
				      sql_stmt_str(st, r->qual), r->qual.len ? "." : "",
				      sql_stmt_str(st, r->name), r->alias.len ? "=" : "",
				      sql_stmt_str(st, r->alias));
	}
}

struct cls_case {
	const char *sql;
	const char *want;
	uint32_t flags; /* flags that must be set */
};

static const struct cls_case cases[] = {
	/* SELECT forms */
	{"select * from t1 where id = 1", "select r:t1", 0},
	{"SELECT c FROM ks.t1 AS a JOIN `ks2`.`t``2` b ON a.x=b.x", "select r:ks.t1=a r:ks2.t`2=b", 0},
	{"select * from t1, t2 x, ks.t3", "select r:t1 r:t2=x r:ks.t3", 0},
	{"select * from `ks@replica`.t1", "select r:ks@replica.t1", 0},
	{"select * from a left join b using (id) straight_join c natural join d, e",
	 "select r:a r:b r:c r:d r:e", 0},
	{"select * from a join b on a.x = b.x, c", "select r:a r:b r:c", 0},
	{"select (select count(*) from t1) + 1", "select r:t1 r:dual", 0},
	{"select 1", "select r:dual", 0},
	{"select 1 from dual", "select r:dual", 0},
	{"select now()", "select r:dual", 0},
	{"select * from (select a from t1) as d join t2 on 1", "select r:t1 r:t2", 0},
	{"select * from t1 where x in (select y from t2 where z = (select 1 from t3))",
	 "select r:t1 r:t2 r:t3", 0},
	{"select a from t1 union all select b from t2 union select 3", "select r:t1 r:t2 r:dual", 0},
	{"(select a from t1) union (select b from t2)", "select r:t1 r:t2", 0},
	{"with c as (select * from t1), d (x) as (select 1 from c) select * from c join d join t2",
	 "select r:t1 r:t2", 0},
	{"with recursive r as (select 1 union all select n+1 from r where n < 3) select * from r",
	 "select r:dual", 0},
	{"select * from (a join b on 1) join c", "select r:a r:b r:c", 0},
	{"select * from t1 force index (i) join t2 use index (j) where 1", "select r:t1 r:t2", 0},
	{"select * from json_table('[]', '$[*]' columns (a int path '$')) as jt", "select", 0},
	{"select * from t1 for update", "select r:t1", 0},
	{"select * from t1 lock in share mode", "select r:t1", 0},
	{"/*!50700 select */ * /* from x */ from -- from y\n t1 # from z", "select r:t1", 0},
	{"select /*+ MAX_EXECUTION_TIME(1) */ /*vt+ PLANNER=gen4 */ * from t1", "select r:t1", 0},
	{"select * from information_schema.tables", "select r:information_schema.tables", 0},
	{"select 'from t9', \"from t8\", `from` from t1", "select r:t1", 0},
	{"select * from t1 partition (p0) as x", "select r:t1=x", 0},
	{"select * from lateral (select 1) d", "select r:dual", 0},
	{"table t1", "select r:t1", 0},
	{"select extract(year from d), trim(leading 'x' from c), substring(s from 2) from t1",
	 "select r:t1", 0},
	{"select straight_join a from t1 straight_join t2", "select r:t1 r:t2", 0},
	{"select a, count(*) from t1 group by a with rollup", "select r:t1", 0},
	{"delete from t1 where extract(year from d) = 2020", "delete w:t1", 0},
	{"update t1 set a = trim(both ' ' from a)", "update w:t1", 0},
	{"select * from t1 where a like b", "select r:t1", 0},
	{"select count(*) over (partition by a order by b) from t1", "select r:t1", 0},
	/* DML */
	{"insert into t1 (a, b) values (1, 2), (3, 4)", "insert w:t1", 0},
	{"insert ignore into ks.t1 select * from t2 where x in (select y from t3)",
	 "insert w:ks.t1 r:t2 r:t3", 0},
	{"insert into t1 values (1) on duplicate key update a = values(a)", "insert w:t1", 0},
	{"insert t1 set a = (select max(a) from t2)", "insert w:t1 r:t2", 0},
	{"replace into t1 values (1)", "replace w:t1", 0},
	{"update t1 set a = 1 where id = 2", "update w:t1", 0},
	{"update low_priority t1 a join t2 b on a.x = b.x set a.y = b.y", "update w:t1=a w:t2=b", 0},
	{"update t1, t2 set t1.a = t2.a where t1.id in (select id from t3)",
	 "update w:t1 w:t2 r:t3", 0},
	{"delete from t1 where id = 1", "delete w:t1", 0},
	{"delete quick from ks.t1 where id in (select id from t2)", "delete w:ks.t1 r:t2", 0},
	{"delete a from t1 a join t2 b on a.x = b.x", "delete w:t1=a r:t2=b", 0},
	{"delete t1, t2 from t1 join t2 join t3", "delete w:t1 w:t2 r:t3", 0},
	{"delete from t1 using t1, t2 where t1.x = t2.x", "delete w:t1 r:t2", 0},
	{"delete from a1 using t1 as a1 join t2", "delete w:t1=a1 r:t2", 0},
	{"with d as (select id from t2) delete from t1 where id in (select id from d)",
	 "delete r:t2 w:t1", 0},
	{"with d as (select id from t2) update t1 set a = 1", "update r:t2 w:t1", 0},
	{"load data local infile '/tmp/x' replace into table ks.t1 fields terminated by ','",
	 "load w:ks.t1", 0},
	/* DDL */
	{"create table t1 (id int primary key, b varchar(10) check (b like 'x%'))", "create d:t1",
	 SQL_STMT_DDL_TABLE},
	{"create temporary table if not exists ks.t1 like ks.t2", "create d:ks.t1 r:ks.t2",
	 SQL_STMT_TEMPORARY | SQL_STMT_IF_NOT_EXISTS},
	{"create table t1 (like t2)", "create d:t1 r:t2", 0},
	{"create table t1 as select * from t2 join t3", "create d:t1 r:t2 r:t3", 0},
	{"create table t1 as select * from t2 where a like b", "create d:t1 r:t2", 0},
	{"create or replace algorithm=merge definer=`u`@`%` sql security invoker view v1 as "
	 "select * from t1",
	 "create d:v1 r:t1", SQL_STMT_DDL_VIEW},
	{"create unique index i1 using btree on ks.t1 (a)", "create d:ks.t1", SQL_STMT_DDL_INDEX},
	{"create database if not exists db1", "create", SQL_STMT_DDL_DATABASE | SQL_STMT_IF_NOT_EXISTS},
	{"create schema db1", "create", SQL_STMT_DDL_DATABASE},
	{"create procedure p() begin select 1; end", "create", 0},
	{"alter table t1 add column c int, rename to t9", "alter d:t1 d+:t9", SQL_STMT_ALTER_RENAME},
	{"alter table ks.t1 rename column a to b", "alter d:ks.t1", 0},
	{"alter table t1 rename index a to b, drop column c", "alter d:t1", SQL_STMT_ALTER_DROP},
	{"alter table t1 engine = innodb", "alter d:t1", SQL_STMT_DDL_TABLE},
	{"alter view v1 as select * from t2", "alter d:v1 r:t2", SQL_STMT_DDL_VIEW},
	{"alter database db1 character set utf8mb4", "alter", SQL_STMT_DDL_DATABASE},
	{"alter vschema on t1 add vindex hash(id)", "alter", 0},
	{"drop table t1", "drop d:t1", SQL_STMT_DDL_TABLE},
	{"drop temporary table if exists t1, ks.t2, `t3` cascade", "drop d:t1 d:ks.t2 d:t3",
	 SQL_STMT_IF_EXISTS | SQL_STMT_TEMPORARY},
	{"drop view if exists v1, v2", "drop d:v1 d:v2", SQL_STMT_DDL_VIEW | SQL_STMT_IF_EXISTS},
	{"drop index i1 on ks.t1", "drop d:ks.t1", SQL_STMT_DDL_INDEX},
	{"drop database if exists db1", "drop", SQL_STMT_DDL_DATABASE | SQL_STMT_IF_EXISTS},
	{"/*!32312 drop */ table t1", "drop d:t1", 0},
	{"drop procedure p1", "drop", 0},
	{"truncate table t1", "truncate d:t1", SQL_STMT_DDL_TABLE},
	{"truncate ks.t1", "truncate d:ks.t1", 0},
	{"rename table a to b, ks.c to ks.d", "rename d:a d+:b d:ks.c d+:ks.d", SQL_STMT_DDL_TABLE},
	/* session and transactions */
	{"set autocommit = 1", "set", 0},
	{"set @x = (select max(a) from t1)", "set r:t1", 0},
	{"use ks", "use", 0},
	{"begin", "begin", 0},
	{"start transaction read only", "begin", 0},
	{"start slave", "other", 0},
	{"commit work", "commit", 0},
	{"rollback to savepoint s1", "rollback", 0},
	{"savepoint s1", "savepoint", 0},
	{"release savepoint s1", "savepoint", 0},
	{"xa start 'x'", "xa", 0},
	/* show, explain, vexplain */
	{"show tables from ks", "show", 0},
	{"show full tables", "show", 0},
	{"show create table ks.t1", "show r:ks.t1", 0},
	{"show full columns from t1 from ks", "show r:ks.t1", 0},
	{"show index in t1", "show r:t1", 0},
	{"show vitess_tablets", "show", 0},
	{"describe t1", "explain r:t1", 0},
	{"desc ks.t1 col", "explain r:ks.t1", 0},
	{"explain t1", "explain r:t1", 0},
	{"explain select * from t1", "explain/select r:t1", SQL_STMT_EXPLAIN_STMT},
	{"explain format=json delete from t1", "explain/delete w:t1", SQL_STMT_EXPLAIN_STMT},
	{"explain analyze select * from t1 join t2", "explain/select r:t1 r:t2", 0},
	{"vexplain queries drop table t1", "drop/drop d:t1", SQL_STMT_VEXPLAIN_EXEC},
	{"vexplain all select * from t1", "select/select r:t1", SQL_STMT_VEXPLAIN_EXEC},
	{"vexplain trace /*vt+ EXECUTE_DML_QUERIES */ insert into t1 values (1)",
	 "insert/insert w:t1", SQL_STMT_VEXPLAIN_EXEC},
	{"vexplain plan drop table t1", "explain/drop d:t1", SQL_STMT_VEXPLAIN_PLAN},
	{"vexplain select 1 from t1", "explain/select r:t1", SQL_STMT_VEXPLAIN_PLAN},
	{"vexplain keys select 1 from t1", "explain/select r:t1", SQL_STMT_VEXPLAIN_PLAN},
	/* call, lock, prepare */
	{"call p1(1, 2)", "call", 0},
	{"lock tables t1 read, ks.t2 as x write, t3 low_priority write", "lock r:t1 w:ks.t2=x w:t3",
	 0},
	{"unlock tables", "unlock", 0},
	{"prepare s1 from 'select * from t1 where id = ?'", "prepare/select r:t1",
	 SQL_STMT_PREPARE_TEXT},
	{"prepare s1 from 'drop table `it''s`'", "prepare/drop d:it's", SQL_STMT_PREPARE_TEXT},
	{"prepare s1 from \"delete from t1 where a = \\\"x\\\"\"", "prepare/delete w:t1", 0},
	{"prepare s1 from @sql", "prepare", SQL_STMT_PREPARE_UNKNOWN},
	{"execute s1 using @a", "execute", 0},
	{"deallocate prepare s1", "deallocate", 0},
	{"drop prepare s1", "deallocate", 0},
	{"do sleep(1)", "other", 0},
	{"grant all on *.* to u", "other", 0},
	/* bad input */
	{"", "unparsed", 0},
	{"/* only a comment */", "unparsed", 0},
	{"hello world", "unparsed", 0},
	{"select 'abc from t1", "select r:dual", SQL_STMT_UNTERMINATED},
	{"select * from `t1", "select r:t1", SQL_STMT_UNTERMINATED},
	{"select * from", "select", 0},
	{"select * from t1 where (((", "select r:t1", 0},
	{"))) select * from t1", "unparsed", 0},
	{"select * from T1 join t1", "select r:T1 r:t1", 0},
	{"select * from t1;", "select r:t1", 0},
};

static void
test_corpus(void **state)
{
	struct sql_stmt st;
	char out[1024];
	size_t i;
	int failures = 0;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sql_classify(cases[i].sql, strlen(cases[i].sql), 0, &st);
		render(&st, out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0 || (st.flags & cases[i].flags) != cases[i].flags) {
			print_error("case %zu: %s\n  got  %s (flags %#x)\n  want %s (flags %#x)\n", i,
				    cases[i].sql, out, st.flags, cases[i].want, cases[i].flags);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void
test_details(void **state)
{
	struct sql_stmt st;
	const char *q;

	(void)state;
	q = "use `ks:-80@replica`";
	sql_classify(q, strlen(q), 0, &st);
	assert_string_equal(sql_stmt_str(&st, st.db), "ks:-80@replica");
	q = "use ks@rdonly";
	sql_classify(q, strlen(q), 0, &st);
	assert_string_equal(sql_stmt_str(&st, st.db), "ks@rdonly");
	q = "drop database `db``1`";
	sql_classify(q, strlen(q), 0, &st);
	assert_string_equal(sql_stmt_str(&st, st.db), "db`1");
	q = "show tables in ks2";
	sql_classify(q, strlen(q), 0, &st);
	assert_string_equal(sql_stmt_str(&st, st.db), "ks2");
	q = "prepare stmt1 from 'select 1'";
	sql_classify(q, strlen(q), 0, &st);
	assert_string_equal(sql_stmt_str(&st, st.object), "stmt1");
	assert_int_equal(st.ntables, 1);
	assert_true(st.tables[0].flags & SQL_TREF_IMPLICIT);
	q = "select 1 from t1";
	sql_classify(q, strlen(q), 0, &st);
	assert_null(st.reason);
	q = "nonsense";
	sql_classify(q, strlen(q), 0, &st);
	assert_non_null(st.reason);
	/* ANSI_QUOTES: "t" is an identifier */
	q = "select * from \"ks\".\"t1\"";
	sql_classify(q, strlen(q), SQL_LEX_ANSI_QUOTES, &st);
	assert_int_equal(st.ntables, 1);
	assert_string_equal(sql_stmt_str(&st, st.tables[0].qual), "ks");
	assert_string_equal(sql_stmt_str(&st, st.tables[0].name), "t1");
}

static void
test_overflow(void **state)
{
	struct sql_stmt st;
	char q[8192];
	size_t w = (size_t)snprintf(q, sizeof(q), "select * from t0");
	int i;

	(void)state;
	for (i = 1; i < 100; i++)
		w += (size_t)snprintf(q + w, sizeof(q) - w, ", t%d", i);
	sql_classify(q, w, 0, &st);
	assert_int_equal(st.ntables, SQL_STMT_MAX_TABLES);
	assert_true(st.flags & SQL_STMT_TABLES_OVERFLOW);
	/* names buffer overflow: one very long identifier */
	memset(q, 'a', sizeof(q));
	memcpy(q, "select * from ", 14);
	sql_classify(q, sizeof(q), 0, &st);
	assert_true(st.flags & SQL_STMT_NAMES_OVERFLOW);
	assert_int_equal(st.ntables, 0);
}

/* Deep nesting and long inputs stay linear: 200k parentheses finish quickly. */
static void
test_deep_nesting(void **state)
{
	size_t n = 200000, i;
	char *q = malloc(n);
	struct sql_stmt st;

	(void)state;
	assert_non_null(q);
	memcpy(q, "select ", 7);
	for (i = 7; i < n; i++)
		q[i] = i % 3 == 0 ? '(' : i % 3 == 1 ? ',' : ')';
	sql_classify(q, n, 0, &st);
	assert_int_equal(st.cls, SQL_CLASS_SELECT);
	for (i = 7; i < n; i++)
		q[i] = '(';
	sql_classify(q, n, 0, &st);
	assert_true(st.flags & SQL_STMT_TOO_DEEP);
	free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corpus),
	    cmocka_unit_test(test_details),
	    cmocka_unit_test(test_overflow),
	    cmocka_unit_test(test_deep_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
