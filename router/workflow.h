/* router/workflow.h: what changed between two rules snapshots, in the operator's terms:
 * the per-key diff, where each moved table's unqualified name now goes per tablet type,
 * and the MoveTables step the new rules show (ROUTING_SPEC section d).  Pure (jansson
 * only).  A small memory remembers each workflow's direction between snapshots, since
 * "all traffic to S after a switch" (reversed) and "all traffic to T" (switched) have
 * the same shape.
 *
 *   struct workflow_memory *m = workflow_memory_new();
 *   workflow_describe_change(m, old_rules_or_NULL, new_rules, record);  adds fields
 */
#ifndef RT_ROUTER_WORKFLOW_H
#define RT_ROUTER_WORKFLOW_H

#include <jansson.h>

struct rules;
struct workflow_memory;

struct workflow_memory *workflow_memory_new(void);
void workflow_memory_free(struct workflow_memory *m);

/* Adds to `out` (a JSON object): "changes" (sorted "key: old -> new" lines),
 * "moved" (sorted "table@tablet_type: ks -> ks" lines for unqualified names),
 * "workflows" (per table: step, source, target, where primary/replica/rdonly go) and
 * "summary" (one human line per table).  old may be NULL (first snapshot). */
void workflow_describe_change(struct workflow_memory *m, const struct rules *old,
			      const struct rules *fresh, json_t *out);

/* The step for one table under `r` alone (no memory): "none", "created",
 * "reads_switched", "switched", "custom"; for tests and /rules. */
const char *workflow_step(const struct rules *r, const char *table);

#endif /* RT_ROUTER_WORKFLOW_H */
