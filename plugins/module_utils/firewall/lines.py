"""A rendered rule line, the same for every backend: its chain, its body, the operator's comment, and
the short stable id carried in its comment, by which the live ruleset reads back in canonical form."""

import hashlib


def rule_id(text):
    """A short, stable id of a rule's text, carried in its comment so the live table reads back."""
    return "bw:" + hashlib.sha256(text.encode()).hexdigest()[:10]


class Line:
    """chain (input, forward, output), body (the backend's own syntax, without comment), comment."""

    def __init__(self, chain, body, comment=""):
        self.chain = chain
        self.body = body
        self.comment = comment
        self.id = rule_id(f"{chain}: {body}")

    def canonical(self):
        return f"{self.chain}: {self.body}"
