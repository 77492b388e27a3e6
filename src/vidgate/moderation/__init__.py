"""Prompt screening before any credits move: the operator's word and pattern list, optionally a
vendor's text moderation, and the record of what was refused (`moderation_blocks`)."""
