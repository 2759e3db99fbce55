/**
 * ONNX model encoding: the subset of onnx.proto our graphs use, encoded with protobufjs. Field numbers are
 * those of onnx/onnx.proto (IR version 8 era); messages and fields we never write are left out, which is
 * harmless because protobuf readers skip nothing they are not given.
 */
import * as protobuf from "protobufjs";

// proto2, as onnx.proto itself; numeric repeated fields are packed (every reader accepts packed and unpacked).
const ONNX_SUBSET = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7 [packed = true];
  repeated int64 ints = 8 [packed = true];
  optional AttributeType type = 20;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string domain = 7;
}

message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  repeated int64 dims = 1 [packed = true];
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  optional int32 data_location = 14;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message TensorShapeProto {
  message Dimension {
    optional int64 dim_value = 1;
    optional string dim_param = 2;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  optional Tensor tensor_type = 1;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

/** TensorProto.DataType codes. */
export const OnnxDataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;
export type OnnxDataTypeCode = (typeof OnnxDataType)[keyof typeof OnnxDataType];

/** AttributeProto.AttributeType codes: set on every attribute, since a JS 1.0 cannot tell FLOAT from INT. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface TensorProtoJson {
  name?: string;
  dims: number[];
  data_type: OnnxDataTypeCode;
  float_data?: number[];
  int64_data?: number[];
  raw_data?: Uint8Array;
  /** With data_location 1 (EXTERNAL): location, offset and length of the bytes in a file beside the model. */
  external_data?: Array<{ key: string; value: string }>;
  data_location?: number;
}

export interface AttributeProtoJson {
  name: string;
  type: (typeof AttributeType)[keyof typeof AttributeType];
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProtoJson;
  floats?: number[];
  ints?: number[];
}

export interface NodeProtoJson {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  attribute: AttributeProtoJson[];
  domain?: string;
}

/** A dimension is a size or a symbolic name (dim_param) that ORT binds per run. */
export interface ValueInfoProtoJson {
  name: string;
  type: { tensor_type: { elem_type: OnnxDataTypeCode; shape: { dim: Array<{ dim_value: number } | { dim_param: string }> } } };
}

export interface GraphProtoJson {
  name: string;
  node: NodeProtoJson[];
  initializer: TensorProtoJson[];
  input: ValueInfoProtoJson[];
  output: ValueInfoProtoJson[];
  value_info?: ValueInfoProtoJson[];
}

export interface ModelProtoJson {
  ir_version: number;
  producer_name: string;
  graph: GraphProtoJson;
  opset_import: Array<{ domain: string; version: number }>;
}

let modelType: protobuf.Type | null = null;

function modelProto(): protobuf.Type {
  modelType ??= protobuf.parse(ONNX_SUBSET, { keepCase: true }).root.lookupType("onnx.ModelProto");
  return modelType;
}

/** The serialized model, ready for InferenceSession.create(bytes). */
export function encodeModel(model: ModelProtoJson): Uint8Array {
  const type = modelProto();
  // verify() catches a mistyped field (e.g. a string where a number belongs) with its path, before ORT would.
  const problem = type.verify(model);
  if (problem) throw new Error(`invalid ONNX model: ${problem}`);
  return type.encode(type.fromObject(model)).finish();
}

/** Decoded back to plain objects (int64 as numbers, bytes as Uint8Array): for tests and inspection. */
export function decodeModel(bytes: Uint8Array): ModelProtoJson {
  const type = modelProto();
  return type.toObject(type.decode(bytes), { longs: Number, bytes: Uint8Array, defaults: false, arrays: true }) as ModelProtoJson;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian bytes of float32 or float64 values, as TensorProto.raw_data requires. */
export function rawLittleEndian(data: Float32Array | Float64Array): Uint8Array {
  if (littleEndian) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  const size = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < data.length; i++) {
    if (size === 4) view.setFloat32(i * 4, data[i] as number, true);
    else view.setFloat64(i * 8, data[i] as number, true);
  }
  return out;
}
