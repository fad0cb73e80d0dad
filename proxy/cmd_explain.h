/* proxy/cmd_explain.h: `routetrace explain`, the router's command-line and batch
 * (JSON lines) interface. */
#ifndef RT_PROXY_CMD_EXPLAIN_H
#define RT_PROXY_CMD_EXPLAIN_H

/* argv[0] is "explain".  Returns the process exit status. */
int cmd_explain(int argc, char **argv);

#endif /* RT_PROXY_CMD_EXPLAIN_H */
