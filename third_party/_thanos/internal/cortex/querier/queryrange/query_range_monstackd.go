// Copyright (c) The Cortex Authors.
// Licensed under the Apache License 2.0.

// Added by monstackd (third_party/_thanos/README.md): a range query's
// series are read and written straight with jsoniter, registered for the
// type so that a response's series are not scanned twice. Upstream went
// through model.SampleStream, a label map and encoding/json's per-sample
// MarshalJSON, which cost the query-frontend ten times the querier's own
// encoding on a high-cardinality answer. The JSON is the same.

package queryrange

import (
	"math"
	"sort"
	"strconv"
	"unsafe"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/common/model"

	"github.com/thanos-io/thanos/internal/cortex/cortexpb"
)

func init() {
	jsoniter.RegisterTypeDecoderFunc("queryrange.SampleStream", func(ptr unsafe.Pointer, iter *jsoniter.Iterator) {
		readSampleStream((*SampleStream)(ptr), iter)
	})
	jsoniter.RegisterTypeEncoderFunc("queryrange.SampleStream", func(ptr unsafe.Pointer, stream *jsoniter.Stream) {
		writeSampleStream((*SampleStream)(ptr), stream)
	}, func(unsafe.Pointer) bool { return false })
}

// UnmarshalJSON implements json.Unmarshaler and is used for unmarshalling
// a Prometheus range query response (matrix).
func (s *SampleStream) UnmarshalJSON(data []byte) error {
	iter := json.BorrowIterator(data)
	defer json.ReturnIterator(iter)
	readSampleStream(s, iter)
	return iter.Error
}

// readSampleStream reads {"metric":{…},"values":[[t,"v"],…],"histograms":[…]}.
func readSampleStream(s *SampleStream, iter *jsoniter.Iterator) {
	s.Labels, s.Samples, s.Histograms = nil, nil, nil
	for field := iter.ReadObject(); field != "" && iter.Error == nil; field = iter.ReadObject() {
		switch field {
		case "metric":
			for name := iter.ReadObject(); name != "" && iter.Error == nil; name = iter.ReadObject() {
				s.Labels = append(s.Labels, cortexpb.LabelAdapter{Name: name, Value: iter.ReadString()})
			}
		case "values":
			for iter.ReadArray() && iter.Error == nil {
				s.Samples = append(s.Samples, readSamplePair(iter))
			}
		case "histograms":
			var hs []model.SampleHistogramPair
			iter.ReadVal(&hs)
			for _, h := range hs {
				s.Histograms = append(s.Histograms, fromModelSampleHistogramPair(h))
			}
		default:
			iter.Skip()
		}
	}
	// Sorted by name, as upstream's conversion from a label map left them.
	sort.Slice(s.Labels, func(i, j int) bool { return s.Labels[i].Name < s.Labels[j].Name })
}

// readSamplePair reads [<seconds>, "<value>"].
func readSamplePair(iter *jsoniter.Iterator) cortexpb.Sample {
	if !iter.ReadArray() {
		iter.ReportError("SampleStream", "empty sample pair")
		return cortexpb.Sample{}
	}
	// Milliseconds fit a float64's 53 bits exactly; rounding undoes the
	// decimal fraction's binary error.
	t := int64(math.Round(iter.ReadFloat64() * 1000))
	if !iter.ReadArray() {
		iter.ReportError("SampleStream", "a sample pair without value")
		return cortexpb.Sample{}
	}
	// A number has no escapes: the slice is the iterator's own bytes.
	b := iter.ReadStringAsSlice()
	if len(b) == 0 {
		iter.ReportError("SampleStream", "empty sample value")
		return cortexpb.Sample{}
	}
	v, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	if err != nil {
		iter.ReportError("SampleStream", err.Error())
		return cortexpb.Sample{}
	}
	if iter.ReadArray() {
		iter.ReportError("SampleStream", "a sample pair has more than two elements")
	}
	return cortexpb.Sample{TimestampMs: t, Value: v}
}

// appendSeconds appends ms as Prometheus' API writes a timestamp
// (jsonutil.MarshalTimestamp): seconds and, if any, three digits of
// milliseconds.
func appendSeconds(buf []byte, ms int64) []byte {
	if ms < 0 {
		buf = append(buf, '-')
		ms = -ms
	}
	buf = strconv.AppendInt(buf, ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		buf = append(buf, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	}
	return buf
}

// appendValue appends v as Prometheus' API writes a sample value
// (jsonutil.MarshalFloat), unquoted.
func appendValue(buf []byte, v float64) []byte {
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(buf, v, format, -1, 64)
}

// MarshalJSON implements json.Marshaler.
func (s *SampleStream) MarshalJSON() ([]byte, error) {
	stream := json.BorrowStream(nil)
	defer json.ReturnStream(stream)
	writeSampleStream(s, stream)
	if stream.Error != nil {
		return nil, stream.Error
	}
	return append([]byte(nil), stream.Buffer()...), nil
}

// writeSampleStream writes {"metric":{…},"values":[[t,"v"],…]} with
// "histograms" when there are any, "values" when there are any or no
// histograms, as model.SampleStream does; timestamps and values as the
// querier wrote them (upstream wrote 1e-300 as 300 decimal digits).
func writeSampleStream(s *SampleStream, stream *jsoniter.Stream) {
	stream.WriteObjectStart()
	stream.WriteObjectField("metric")
	stream.WriteObjectStart()
	for i, l := range s.Labels {
		if i > 0 {
			stream.WriteMore()
		}
		stream.WriteObjectField(l.Name)
		stream.WriteString(l.Value)
	}
	stream.WriteObjectEnd()
	if len(s.Samples) > 0 || len(s.Histograms) == 0 {
		stream.WriteMore()
		stream.WriteObjectField("values")
		stream.WriteArrayStart()
		var buf []byte
		for i, sample := range s.Samples {
			if i > 0 {
				stream.WriteMore()
			}
			buf = append(buf[:0], '[')
			buf = appendSeconds(buf, sample.TimestampMs)
			buf = append(buf, ',', '"')
			buf = appendValue(buf, sample.Value)
			buf = append(buf, '"', ']')
			stream.Write(buf)
		}
		stream.WriteArrayEnd()
	}
	if len(s.Histograms) > 0 {
		hs := make([]model.SampleHistogramPair, 0, len(s.Histograms))
		for _, h := range s.Histograms {
			hs = append(hs, toModelSampleHistogramPair(h))
		}
		stream.WriteMore()
		stream.WriteObjectField("histograms")
		stream.WriteVal(hs)
	}
	stream.WriteObjectEnd()
}
