/* proxy/cmd_report.h: `routetrace report`, a summary of a trace file. */
#ifndef RT_PROXY_CMD_REPORT_H
#define RT_PROXY_CMD_REPORT_H

/* argv[0] is "report".  Returns the process exit status. */
int cmd_report(int argc, char **argv);

#endif /* RT_PROXY_CMD_REPORT_H */
