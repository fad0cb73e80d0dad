/* capture/cmd_capture.h: `routetrace capture`, the passive sidecar: live from an
 * interface or offline from a pcap/pcapng file, into the same trace and /metrics as
 * the inline proxy. */
#ifndef RT_CAPTURE_CMD_CAPTURE_H
#define RT_CAPTURE_CMD_CAPTURE_H

/* argv[0] is "capture".  Returns the process exit status (0 ok, 1 failure, 2 usage). */
int cmd_capture(int argc, char **argv);

#endif /* RT_CAPTURE_CMD_CAPTURE_H */
