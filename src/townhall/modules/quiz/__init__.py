"""Quiz app (seed 003): live multiplayer quiz games over Socket.IO, editor, library, community."""
