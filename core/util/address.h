/* Mail addresses as tdhook accepts them in its configuration and in
 * TOPdesk: a plain addr-spec, or "Display Name <addr-spec>" where a sender
 * may carry a name. */
#ifndef TDHOOK_ADDRESS_H
#define TDHOOK_ADDRESS_H

/* 1 when addr looks like a mail address that is safe to put in a header and
 * an SMTP envelope: one @, a local part of at most 64 bytes, a domain of
 * letters, digits, dots and hyphens; no CR, LF, spaces, <, >, quotes or
 * other list syntax; at most 254 bytes. */
int address_ok(const char *addr);

/* Splits a mailbox, "addr" or "Name <addr>" (the name may be quoted with
 * "..."), into its name (allocated, or NULL when there is none) and its
 * address (allocated).  1 when the address is address_ok() and the name
 * has no control character; 0 otherwise, with nothing allocated.  name
 * may be NULL when only the address is wanted. */
int address_split(const char *mailbox, char **name, char **addr);

#endif
