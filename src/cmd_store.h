/*
 * cmd_store.h: the store commands of `mox` and of the tools mox-backup and
 * mox-verifydata (spec/store.md 16-19, spec/config.md 7): backup,
 * verifydata, import, export, setaccountpassword and gentestdata, plus the
 * pure helpers for the Maildir and mboxrd formats they read and write.
 *
 * The handlers follow src/cli.h: argv[0..k-1] are the command words, errors
 * go to stderr through cli_errorf(), usage errors return CLI_USAGE (2),
 * failures 1. They block on disk and SQLite; the data directory may be in
 * use by a running server at the same time (DESIGN.md "Data directory").
 */
#ifndef CMD_STORE_H
#define CMD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"

struct buf;

int cmd_backup(int argc, char **argv);          /* backup */
int cmd_verifydata(int argc, char **argv);      /* verifydata */
int cmd_import(int argc, char **argv);          /* import maildir|mbox */
int cmd_export(int argc, char **argv);          /* export maildir|mbox */
int cmd_setaccountpassword(int argc, char **argv);
int cmd_gentestdata(int argc, char **argv);

/* Maildir keyword letters: index 0 is 'a' (dovecot-keywords). */
#define CMD_STORE_KW_LETTERS 26

struct cmd_store_kwmap {
	char *kw[CMD_STORE_KW_LETTERS]; /* owned; NULL where unassigned */
};

void cmd_store_kwmap_release(struct cmd_store_kwmap *m);
/* Parse a dovecot-keywords file ("<index> <keyword>" lines). Lines that
 * do not fit are skipped. Pure. */
void cmd_store_kwmap_parse(struct cmd_store_kwmap *m, struct span text);
/* The dovecot-keywords text of m, appended to out. */
void cmd_store_kwmap_format(const struct cmd_store_kwmap *m, struct buf *out);

/* Flags and keywords from a Maildir file name's ":2," info (spec/store.md
 * 18.2): D F R S T, P ignored, letters a-z through m. Well-known keyword names become STORE_F_* flags; valid
 * others are appended to keywords space separated (lower-cased); invalid
 * ones are dropped. A name without ":2," has no flags. Pure. */
void cmd_store_maildir_info_parse(const char *name,
    const struct cmd_store_kwmap *m, uint32_t *flags_out,
    struct buf *keywords);
/* The ":2,<letters>" info for flags and keywords (space separated): D F
 * R S T, then letters in m for the well-known keywords ($Forwarded too)
 * and the others, assigned on first use. Keywords beyond the 26
 * letters are left out. Appends to out. Pure. */
void cmd_store_maildir_info_format(uint32_t flags, const char *keywords,
    struct cmd_store_kwmap *m, struct buf *out);

/* Append in to out with every bare LF made CRLF. */
void cmd_store_to_crlf(struct span in, struct buf *out);
/* Append in to out with every CRLF made LF. */
void cmd_store_to_lf(struct span in, struct buf *out);

/* The time of an mbox "From " line: asctime ("Mon Jan  2 15:04:05 2006"),
 * Unix date (zone name before the year) or Ruby date (numeric zone before
 * the year). Returns 0 with seconds since the epoch, or -1. Pure. */
int cmd_store_mbox_from_time(struct span line, int64_t *t_out);
/* asctime form of t (UTC) without newline, appended to out. */
void cmd_store_asctime(int64_t t, struct buf *out);

struct store_msg;
/* Append message m (content msg, CRLF) in mboxrd form to out
 * (spec/store.md 18.1): "From <mailfrom or mox> <asctime>", Status,
 * X-Status and X-Keywords generated ($Junk and $NotJunk only when not
 * both), the original ones dropped, ">" added to ^>*From lines, LF line
 * ends, an empty line after. Pure. */
void cmd_store_mbox_message(const struct store_msg *m, const char *mailfrom,
    struct span msg, struct buf *out);

/* Is s a valid keyword for the store (IMAP atom, not a system flag)? */
bool cmd_store_keyword_valid(struct span s);

#endif
