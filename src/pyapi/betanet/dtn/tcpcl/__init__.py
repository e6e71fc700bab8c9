"""TCPCLv4 (RFC 9174): ``events`` (code points and session events), ``protocol`` (the sans-IO
session) and ``aio`` (the asyncio adapter: open_session, serve, TcpclClient)."""
