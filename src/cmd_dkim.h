/*
 * cmd_dkim.h: "mox dkim ..." and "mox dmarc ..." command handlers (spec
 * auth.md sections 4, 5). Each takes argv from the first command word
 * and returns the exit status (0, 1, or CLI_USAGE).
 */
#ifndef CMD_DKIM_H
#define CMD_DKIM_H

/* mox dkim genrsa / gened25519: a PKCS#8 PEM private key on stdout. */
int cmd_dkim_genrsa(int argc, char **argv);
int cmd_dkim_gened25519(int argc, char **argv);
/* mox dkim txt < key: the key record value for a private key. */
int cmd_dkim_txt(int argc, char **argv);
/* mox dkim lookup SELECTOR DOMAIN: fetch and print the key record. */
int cmd_dkim_lookup(int argc, char **argv);
/* mox dkim verify FILE: print the result of every signature. */
int cmd_dkim_verify(int argc, char **argv);
/* mox dkim sign FILE: sign with the From domain's configured selectors
 * and print the signed message. */
int cmd_dkim_sign(int argc, char **argv);
/* mox dmarc lookup DOMAIN: print the DMARC record that applies. */
int cmd_dmarc_lookup(int argc, char **argv);
/* mox dmarc verify REMOTEIP MAILFROM EHLO < msg: SPF, DKIM and DMARC. */
int cmd_dmarc_verify(int argc, char **argv);

#endif
