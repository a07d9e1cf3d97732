"""The DynamoDB endpoint: sans-IO HTTP/1.1, the asyncio server glue and the protocol.

Internal; it lands with the DynamoDB endpoint (issue 6).
"""
