"""Labels on every generated video: the implicit AIGC metadata and the visible mark of
GB 45438-2025, and a signed C2PA manifest (docs/labels.md)."""
