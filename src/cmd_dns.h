/*
 * cmd_dns.h: command line handlers for DNS, SPF and DNSBL checks
 * (`mox dns lookup`, `mox spf check|lookup|parse`, `mox dnsbl
 * check|checkhealth`). argv[0..k-1] are the command words. Each accepts
 * "-resolver ip:port" (repeatable) before its arguments to ask those
 * servers instead of the ones in /etc/resolv.conf. Exit 0 on success, 1
 * on failure (reason on stderr), 2 on usage errors.
 */
#ifndef CMD_DNS_H
#define CMD_DNS_H

int cmd_dns_lookup(int argc, char **argv);       /* dns lookup TYPE NAME */
int cmd_spf_check(int argc, char **argv);        /* spf check DOMAIN IP */
int cmd_spf_lookup(int argc, char **argv);       /* spf lookup DOMAIN */
int cmd_spf_parse(int argc, char **argv);        /* spf parse TXT */
int cmd_dnsbl_check(int argc, char **argv);      /* dnsbl check ZONE IP */
int cmd_dnsbl_checkhealth(int argc, char **argv); /* dnsbl checkhealth ZONE */

#endif
