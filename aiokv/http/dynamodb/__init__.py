"""The DynamoDB protocol: values and numbers, the key codec, expressions, operations."""
