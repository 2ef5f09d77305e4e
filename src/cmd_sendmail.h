/*
 * cmd_sendmail.h: `mox sendmail`, a sendmail(8) stand-in that submits a
 * message from stdin to the configured submission server.
 */
#ifndef CMD_SENDMAIL_H
#define CMD_SENDMAIL_H

/* mox sendmail [-t] [-f from] [-F name] [ignored flags] [rcpt...].
 * argv[0] is "sendmail". Returns the exit status. */
int cmd_sendmail(int argc, char **argv);

#endif
