//! Knowledge on AWS: the document store on S3 in the seed's layout, the Bedrock Knowledge Base sync, and the Bedrock agents behind the Agent port
